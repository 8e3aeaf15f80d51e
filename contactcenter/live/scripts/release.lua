-- release: a call's final status came; the agent it occupied may take work again, and is matched at once.
-- ARGS: CallSid. Returns {"ok"|"not_found", offers, revoked, {}} ("not_found": the call occupied nobody — never
-- connected, released already, or replaced by the agent's newer call). Repeating it changes nothing.
if release_call(ARGS[1]) then return answer('ok') end
return answer('not_found')
