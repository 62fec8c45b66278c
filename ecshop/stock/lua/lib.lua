-- lib.lua: helpers prepended to every stock script (not a script of its own).
-- Key layout (version 2), all under one hash tag so every script runs on one Cluster
-- slot (P is the prefix, for example "ecshop:{stock}:"):
--   P.."epoch:2"    string   present while Redis holds a complete copy of the stock in
--                            this layout: "<rebuild id>@<run_id of the server it was
--                            written on>". The name carries the layout's version: a copy
--                            in another layout has no such marker, so nothing sells from
--                            it until a rebuild (which deletes every key under P) wrote
--                            it again in this one.
--   P.."s:"..sku    hash     a = available, h = held, c = sold (committed, not shipped)
--   P.."h:"..token  hash     "" = state ("h" held | "c" committed), sku = qty
--   P.."exp"        zset     every held token, scored by expiry (ms): the one expiry index,
--                            read earliest first by every reserve (lazy reclaim) and the sweep
-- NOTE: the empty field name marks the state because a SKU is never empty.
-- Version 1 kept the marker at P.."epoch" and a second expiry index per SKU
-- (P.."x:"..sku); a reserve paid a ZADD there and a range query on it per line.

-- The expiry score of a hold that lasts until released: ecshop.stock._types.NEVER in ms.
local NEVER_MS = 4000000000000000

-- This server's run_id: new at every start, and a replica's is its own, so a copy
-- marked with another one came here by replication or from a snapshot.
local function server_id()
  return string.match(redis.call('INFO', 'server'), 'run_id:(%x+)')
end

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Read a hold: its state (nil when absent) and its lines as {sku, qty, sku, qty, ...}.
local function read_hold(hkey)
  local flat = redis.call('HGETALL', hkey)
  local state = nil
  local lines = {}
  for i = 1, #flat, 2 do
    if flat[i] == '' then
      state = flat[i + 1]
    else
      lines[#lines + 1] = flat[i]
      lines[#lines + 1] = tonumber(flat[i + 1])
    end
  end
  return state, lines
end

-- Touch (read) every SKU key that dropping or moving this hold writes, so a key of the
-- wrong type fails the script here, before its first write (the hold's own key was read
-- by read_hold, and the caller reads P.."exp").
local function probe_lines(P, lines)
  for i = 1, #lines, 2 do
    redis.call('HGET', P .. 's:' .. lines[i], 'a')
  end
end

-- Remove a hold. A held one gives its units back to available; a committed one
-- gives them back too (restock). Writes only.
local function drop_hold(P, token, state, lines)
  local field = 'h'
  if state == 'c' then field = 'c' end
  for i = 1, #lines, 2 do
    local skey = P .. 's:' .. lines[i]
    redis.call('HINCRBY', skey, 'a', lines[i + 1])
    redis.call('HINCRBY', skey, field, -lines[i + 1])
  end
  redis.call('DEL', P .. 'h:' .. token)
  redis.call('ZREM', P .. 'exp', token)
end
