-- verify.lua: is the copy of the stock here this server's own? The stock core runs it
-- on every new connection, before the connection's first script.
-- KEYS[1]  P.."epoch:2"     marker: "<rebuild id>@<run_id of the server it was written on>"
-- Returns 1 the marker names this server, 0 there is no marker (a rebuild is pending),
--         -1 the marker names another server: this one is a replica promoted by a
--         failover, or restarted from a snapshot, and may lack the last writes
--         (replication is asynchronous). The marker is deleted, so every client
--         stops selling here until the database has rebuilt the copy.
local epoch = redis.call('GET', KEYS[1])
if not epoch then return 0 end
if string.match(epoch, '@(%x+)$') == server_id() then return 1 end
redis.call('DEL', KEYS[1])
return -1
