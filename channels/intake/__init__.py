"""What every channel's intake shares, and no channel owns: the bound on contacts in hand (`admission`) and
the group-commit publisher that hands contacts to the routers (`publishing`)."""
