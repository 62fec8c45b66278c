-- release.lua: give back the units of a hold (cancel, decline, expiry) or, with
-- ARGV[3] = "c", of a sale cancelled before shipping (restock).
-- KEYS[1]  P.."epoch:2"     marker: Redis holds a complete copy
-- KEYS[2]  P.."h:"..token   the hold
-- KEYS[3]  P.."exp"         expiry index of held tokens
-- ARGV[1]  P, the key prefix;  ARGV[2]  token;  ARGV[3]  the state to undo: "h" or "c"
-- Returns 1 released now, 0 nothing in that state under the token (idempotent),
-- 2 the epoch marker is missing (rebuild first).
local P, token, want = ARGV[1], ARGV[2], ARGV[3]
if redis.call('EXISTS', KEYS[1]) == 0 then return 2 end
local state, lines = read_hold(KEYS[2])
redis.call('ZSCORE', KEYS[3], token)
if state ~= want then return 0 end
probe_lines(P, lines)
drop_hold(P, token, state, lines)
return 1
