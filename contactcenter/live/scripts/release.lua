-- release: a call's final status came; the agent it occupied may take work again, and is matched at once.
-- ARGS: CallSid. Returns {"ok"|"not_found", offers, revoked, {agent, since (ms)} | {}, states} ("not_found": the
-- call occupied nobody — never connected, released already, or replaced by the agent's newer call). Repeating it
-- changes nothing.
local a, since = release_call(ARGS[1])
if a then return answer('ok', { a, since or '' }) end
return answer('not_found')
