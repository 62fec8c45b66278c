-- fence.lua: stop a primary that was replaced from selling from its own copy. A rebuild
-- behind Sentinel runs it on every other server of the service before it reads the
-- database: an old primary that is still up takes writes until Sentinel demotes it,
-- and a sale there after the rebuild's read would be missing from the new copy.
-- KEYS[1]  P.."epoch:2"     marker: "<rebuild id>@<run_id of the server it was written on>"
-- Returns 1 the marker named this server and is deleted (scripts here answer "rebuild
--         pending" from now on), 0 nothing to do (no marker, or a replica's copy of
--         its primary's marker: a replica never sells).
local epoch = redis.call('GET', KEYS[1])
if epoch and string.match(epoch, '@(%x+)$') == server_id() then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
