-- seal.lua: the last step of a rebuild: the epoch marker, bound to this server.
-- KEYS[1]  P.."epoch:2"     marker: Redis holds a complete copy
-- ARGV[1]  the rebuild's id
-- ARGV[2]  run_id of the server the rebuild wrote its copy to
-- Returns 1 sealed (selling resumes), 0 this is another server: the primary changed
--         during the rebuild, the copy here may be partial and stays unsealed.
local here = server_id()
if here ~= ARGV[2] then return 0 end
redis.call('SET', KEYS[1], ARGV[1] .. '@' .. here)
return 1
