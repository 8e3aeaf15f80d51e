"""What a run of `python -m bench` found, as one JSON-ready dict (`summarise`) and as a short table (`table`)."""

from __future__ import annotations

import argparse
import statistics
from collections import Counter

from bench.agents import AgentFigures
from bench.processes import ServiceProcesses
from bench.raw_limits import RawLimits
from bench.traffic import TrafficFigures, parse_mix
from bench.twilio_stand_in import StandInFigures


def percentile(values: list[float], q: float) -> float:
    """The value at quantile `q` (0 to 1) of `values`, one of them (nearest rank, rounding down); NaN for none."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _p99_by_window(arrivals: list[float], latencies: list[float], windows: int = 10) -> list[float]:
    """p99 of the offers that arrived in each tenth of the run: a long run that slows down shows it here."""
    if not arrivals:
        return []
    first, last = min(arrivals), max(arrivals)
    width = (last - first) / windows or 1.0
    split: list[list[float]] = [[] for _ in range(windows)]
    for arrived, latency in zip(arrivals, latencies, strict=True):
        split[min(windows - 1, int((arrived - first) / width))].append(latency)
    return [round(percentile(part, 0.99), 1) for part in split]


def summarise(
    args: argparse.Namespace,
    *,
    traffic: TrafficFigures,
    agents: AgentFigures,
    service: ServiceProcesses,
    raw: RawLimits | None,
    elapsed: float,
    stored: int,
    duplicated: int,
    waiting: int,
    calls: StandInFigures | None = None,
    call_outcomes: dict[str, int] | None = None,
    event_lag: dict[str, object] | None = None,
) -> dict[str, object]:
    """The run's figures: `elapsed` from the first send until the last contact reached an agent and the queue
    was empty; `stored` and `duplicated` as PostgreSQL holds the acknowledged contacts; `waiting` the
    conversations still without an agent when the bench stopped waiting (0 in a valid run); `event_lag` what
    the consumer bound to the events exchange measured (bench.event_lag), None when it did not run."""
    latencies = agents.arrival_to_offer_ms
    achieved = len(traffic.accepted) / elapsed
    carried = len(traffic.accepted)
    result: dict[str, object] = {
        "benchmark": "end_to_end",
        "mix": parse_mix(args.mix),
        "customers": args.customers,
        "history_per_customer": args.history,
        # A kept, loaded schema (bench.cards) the service ran on, or None: an empty one of the run's own.
        "database_schema": args.database_schema,
        "mode": "embedded" if args.embedded else f"production ({args.routers} router(s))",
        "events": not args.no_events,
        "offered_rate_per_s": args.rate,
        "duration_s": round(elapsed, 2),
        "sent": traffic.sent,
        "sending_rate_per_s": round(traffic.sent / traffic.sending_s, 1) if traffic.sending_s else None,
        "acknowledged": len(traffic.accepted),
        "statuses": dict(traffic.statuses),
        "client_failures": dict(traffic.failures),
        "sustained_interactions_per_s": round(achieved, 1),
        "offers": len(agents.offers),
        "card_timeline_entries_mean": round(agents.card_entries / len(agents.offers), 1) if agents.offers else None,
        "messages_to_agents": agents.messages,
        # Offers taken back before the agent accepted (a reservation that expired): 0 with agents that answer.
        "offers_revoked": agents.revoked,
        # Agents' sockets the service closed during the run (each reconnected), and errors answered to them.
        "agent_sockets_dropped": agents.dropped,
        "agent_errors": dict(Counter(agents.errors).most_common(5)),
        "arrival_to_offer_ms": {
            "p50": round(percentile(latencies, 0.50), 2),
            "p95": round(percentile(latencies, 0.95), 2),
            "p99": round(percentile(latencies, 0.99), 2),
            "mean": round(statistics.fmean(latencies), 2) if latencies else None,
        },
        "arrival_to_offer_p99_ms_by_tenth": _p99_by_window(agents.arrivals, latencies),
        # Each channel's own share: for a call, from the menu's answer (which publishes it) to the offer; for
        # mail, from the intake's reading of the message (before its 250) to the offer — its accept-to-offer time.
        "arrival_to_offer_ms_by_channel": {
            channel: {
                "p50": round(percentile(values, 0.50), 2),
                "p95": round(percentile(values, 0.95), 2),
                "p99": round(percentile(values, 0.99), 2),
                "mean": round(statistics.fmean(values), 2),
            }
            for channel, values in sorted(agents.arrival_to_offer_ms_by_channel.items())
        },
        # Mails answered 250 per second of sending, over real SMTP (null without email in the mix).
        "smtp_intake_per_s": round(traffic.accepted_by_channel["email"] / traffic.sending_s, 1)
        if traffic.accepted_by_channel["email"] and traffic.sending_s
        else None,
        "lost": len(traffic.accepted) - stored,
        "duplicated": duplicated + sum(n - 1 for n in agents.offers.values()),
        "waiting_for_agent_at_end": waiting,
        # Calls the service connected through the stand-in of Twilio's REST API, and the answers to the status
        # callbacks that ended them.
        "calls_connected": calls.connected if calls else 0,
        "call_status_answers": dict(calls.statuses) if calls else {},
        # What the service recorded of the calls (voice in the mix; else null): connected to an agent (also a
        # repeat caller rung straight through to the agent who holds its conversation, which the stand-in does
        # not end), completed after that, abandoned (with the stand-in's callbacks in Twilio's order, 0 in a
        # valid run).
        "voice_outcomes": call_outcomes,
        "processes": [
            {
                "role": p.role,
                "cpu_percent": round(p.cpu_percent, 1),
                "peak_rss_mb": round(p.peak_rss_mb, 1),
                "rss_growth_after_warmup_pct": p.growth_after_warmup_pct(),
                "system_calls_per_interaction": round(p.system_calls / carried, 1) if carried else None,
                # CPU seconds (user + system, /proc) over the window per contact carried, in ms: far steadier
                # than a rate when other work shares the cores.
                "cpu_ms_per_interaction": round(1000 * p.cpu_seconds / carried, 3) if carried else None,
            }
            for p in service.figures
        ],
        "service_cpu_ms_per_interaction": round(1000 * sum(p.cpu_seconds for p in service.figures) / carried, 3)
        if carried
        else None,
        "machine_cpu_percent": service.machine_cpu_percent,
        # The whole machine's CPU (service, servers, load generator) per contact carried: two cores carry at
        # best 2,000 / this many contacts a second.
        "machine_cpu_ms_per_interaction": round(1000 * service.machine_cpu_seconds / len(traffic.accepted), 2)
        if traffic.accepted
        else None,
        # The same per group: the servers' share of a contact (PostgreSQL, RabbitMQ, Redis) beside the service's.
        "machine_cpu_ms_per_interaction_by_group": {
            group: round(1000 * seconds / carried, 3) for group, seconds in service.machine_cpu_seconds_by_group.items()
        }
        if carried
        else {},
        # Sleeps and wake-ups (all threads) per contact carried, per group: the cost model of docs/performance.md.
        "context_switches_per_interaction": {
            group: round(switches / len(traffic.accepted), 1)
            for group, switches in service.machine_context_switches.items()
        }
        if traffic.accepted
        else {},
    }
    if event_lag is not None:
        # From the change's commit (the event's `time`) to a consumer bound to the events exchange.
        result["event_lag_ms"] = event_lag
    if raw is None:
        # Said, not left out silently: a reader of the figures must know there is no ratio, and why.
        result["raw_not_measured"] = (
            "the embedded mode's bus is in-process: no broker to measure (run without --embedded for the ratio)"
            if args.embedded
            else "--skip-raw"
        )
    else:
        measured = raw.by_operation()
        result["raw"] = {f"{operation}_per_s": round(figure.per_s, 1) for operation, figure in measured.items()}
        result["ratio_to_raw_bus_publish"] = round(achieved / raw.bus_publish.per_s, 3)
        result["raw_machine_cpu_us_per_operation"] = {
            operation: round(figure.machine_cpu_us) for operation, figure in measured.items()
        }
        # What the cores could carry if a contact were nothing but its crossing of the bus, as the raw test
        # makes it: the ceiling on this machine for code sending one message per contact and crossing (ours
        # lets contacts that arrive together share one).
        result["bus_bound_per_s"] = round(raw.bus_bound_per_s(), 1)
        result["ratio_to_bus_bound"] = round(achieved / raw.bus_bound_per_s(), 3)
    return result


def table(result: dict[str, object]) -> str:
    latency = result["arrival_to_offer_ms"]
    assert isinstance(latency, dict)
    lines = [
        f"mode                 {result['mode']}",
        f"sustained            {result['sustained_interactions_per_s']} interactions/s"
        f" (offered {result['offered_rate_per_s']})",
        f"arrival -> offer     p50 {latency['p50']} ms  p95 {latency['p95']} ms  p99 {latency['p99']} ms",
        f"p99 by tenth of run  {result['arrival_to_offer_p99_ms_by_tenth']}",
        f"by channel           {result['arrival_to_offer_ms_by_channel']}",
        f"smtp intake          {result['smtp_intake_per_s']} mails/s accepted (250)",
        f"lost / duplicated    {result['lost']} / {result['duplicated']}"
        f"  (conversations still waiting for an agent at the end: {result['waiting_for_agent_at_end']})",
        f"agents               {result['agent_sockets_dropped']} sockets dropped, errors {result['agent_errors']}",
    ]
    by_channel = result["arrival_to_offer_ms_by_channel"]
    assert isinstance(by_channel, dict)
    if "voice" in by_channel:
        voice = by_channel["voice"]
        lines.append(f"menu answer -> offer p50 {voice['p50']} ms  p95 {voice['p95']} ms (calls)")
        lines.append(
            f"calls connected      {result['calls_connected']}, status callbacks {result['call_status_answers']}"
        )
        lines.append(f"call outcomes        {result['voice_outcomes']}")
    if "raw" in result:
        lines.append(f"raw limits           {result['raw']}")
        lines.append(f"raw machine cpu (µs) {result['raw_machine_cpu_us_per_operation']}")
        lines.append(f"ratio to raw bus     {result['ratio_to_raw_bus_publish']}")
        lines.append(
            f"bus-only bound       {result['bus_bound_per_s']} interactions/s"
            f" (one crossing each); ratio {result['ratio_to_bus_bound']}"
        )
    else:
        lines.append(f"raw limits           not measured: {result['raw_not_measured']}")
    processes = result["processes"]
    assert isinstance(processes, list)
    for process in processes:
        lines.append(
            f"process {process['role']:<12} cpu {process['cpu_percent']}%  peak {process['peak_rss_mb']} MiB"
            f"  system calls per interaction {process['system_calls_per_interaction']}"
            f"  cpu per interaction {process['cpu_ms_per_interaction']} ms"
        )
    lines.append(f"service cpu per interaction {result['service_cpu_ms_per_interaction']} ms")
    if "event_lag_ms" in result:
        lines.append(f"event lag (ms)       {result['event_lag_ms']}")
    else:
        lines.append(f"event lag            not measured (events {'on' if result['events'] else 'off'})")
    machine = result["machine_cpu_percent"]
    assert isinstance(machine, dict)
    lines.append("machine cpu          " + ", ".join(f"{group} {cpu}%" for group, cpu in machine.items()))
    lines.append(f"machine cpu per interaction {result['machine_cpu_ms_per_interaction']} ms")
    switches = result["context_switches_per_interaction"]
    assert isinstance(switches, dict)
    lines.append("context switches per interaction " + ", ".join(f"{g} {n}" for g, n in switches.items()))
    return "\n".join(lines)
