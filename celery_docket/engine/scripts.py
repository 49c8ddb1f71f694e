"""The engine's atomic Lua scripts. Each touches the keys of one queue only (one Cluster slot).

Every key a script touches is in KEYS, except run records (``<queue tag>:run:<id>``, built
from the run prefix: same tag, same slot), whose ids are found inside the script; those are
read before the script's first write, so on a cluster a record already moved by a slot
migration fails the script with nothing written. On a cluster the commit scripts write
results into the queue's outbox instead of their own keys (``outbox``).

Stream entry fields: ``i`` execution id, ``n`` function name, ``b`` body, ``a`` attempt,
``k`` '1' when keyed, ``g`` generation of a keyed execution, ``p`` '1' when perpetual.
Execution record (hash ``run:<id>``): ``s`` state (parked|queued), ``w`` due ms, the same
fields as the entry but ``i`` (the key holds the id) and an empty ``k`` or ``p`` (absent reads
as ''), ``m`` stream entry id while queued. A parked record holds the body, so it is a Redis
hashtable, where every field costs its own allocations: it keeps no field it need not.
"""

from __future__ import annotations

from .entries import COMMIT_LAYOUT, FAST_ACK_LAYOUT

_NOW = """
local _t = redis.call('TIME')
local now = tonumber(_t[1]) * 1000 + math.floor(tonumber(_t[2]) / 1000)
"""

# Park an execution record and wake movers when it becomes the earliest due time.
_PARK = """
local function park(due, rk, wake, id, w, n, b, a, k, g, p)
  local set, unset = {'s', 'parked', 'w', w, 'n', n, 'b', b, 'a', a, 'g', g}, {'m', 'i'}
  if k == '' then unset[#unset + 1] = 'k' else set[#set + 1] = 'k'; set[#set + 1] = k end
  if p == '' then unset[#unset + 1] = 'p' else set[#set + 1] = 'p'; set[#set + 1] = p end
  redis.call('HSET', rk, unpack(set))
  redis.call('HDEL', rk, unpack(unset))
  redis.call('ZADD', due, w, id)
  local head = redis.call('ZRANGE', due, 0, 0)
  if head[1] == id then redis.call('PUBLISH', wake, w) end
end
"""

_ENQUEUE = """
local function enqueue(stream, rk, id, n, b, a, k, g, p)
  local mid
  if k == '1' then
    mid = redis.call('XADD', stream, '*', 'i', id, 'n', n, 'b', b, 'a', a, 'k', k, 'g', g, 'p', p)
    redis.call('HSET', rk, 's', 'queued', 'm', mid, 'n', n, 'a', a, 'k', k, 'g', g, 'p', p)
    redis.call('HDEL', rk, 'b', 'w', 'i')
  elseif p == '1' then
    mid = redis.call('XADD', stream, '*', 'i', id, 'n', n, 'b', b, 'a', a, 'p', p)
  else
    mid = redis.call('XADD', stream, '*', 'i', id, 'n', n, 'b', b, 'a', a)
  end
  return mid
end
"""

ADD = (
    _NOW
    + _PARK
    + _ENQUEUE
    + """
-- KEYS: stream, due, run key, [once token key]. ARGV: wake, id, fn, body, when_ms|'',
--       keyed, replace, attempt, perpetual, group, once ttl ms
local stream, due, rk = KEYS[1], KEYS[2], KEYS[3]
local wake, id, n, b, w = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local k, replace, a, p, group = ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10]
local once, once_ttl = KEYS[4], ARGV[11] or ''
if once then
  -- at most one add per token, ever (within its TTL): chord bodies, fan-in triggers
  if not redis.call('SET', once, id, 'NX', 'PX', once_ttl) then
    return {'exists', 'done', '', ''}
  end
end
local g = 1
if k == '1' then
  local cur = redis.call('HMGET', rk, 's', 'w', 'g', 'm')
  if cur[1] == 'queued' and cur[4] then
    local ok, pend = pcall(redis.call, 'XPENDING', stream, group, cur[4], cur[4], 1)
    local pending = ok and #pend == 1
    if not pending and #redis.call('XRANGE', stream, cur[4], cur[4]) == 0 then
      -- orphaned (its message was lost with Redis data or acked early): not live
      g = tonumber(cur[3] or '0') + 1
      redis.call('DEL', rk)
      cur = {false, false, false, false}
    end
  end
  if cur[1] then
    if replace ~= '1' then
      return {'exists', cur[1], cur[2] or '', cur[4] or ''}
    end
    if cur[1] == 'parked' then
      redis.call('ZREM', due, id)
    elseif cur[1] == 'queued' and cur[4] then
      local ok, pend = pcall(redis.call, 'XPENDING', stream, group, cur[4], cur[4], 1)
      if not ok or #pend == 0 then redis.call('XDEL', stream, cur[4]) end
    end
    g = tonumber(cur[3] or '0') + 1
  end
end
if w == '' or tonumber(w) <= now then
  local mid = enqueue(stream, rk, id, n, b, a, k, g, p)
  return {'queued', 'queued', tostring(now), mid}
end
park(due, rk, wake, id, w, n, b, a, k, g, p)
return {'parked', 'parked', w, ''}
"""
)

MOVE = (
    _NOW
    + _ENQUEUE
    + """
-- KEYS: due, stream. ARGV: run key prefix, limit. Moves due executions to the stream.
-- Returns {moved, head due ms or -1, now ms, now's microseconds past that ms}.
-- Every run record is read before the first write: on a cluster, a record already moved
-- by a slot migration fails the script here, with nothing written yet.
local due, stream, prefix, limit = KEYS[1], KEYS[2], ARGV[1], tonumber(ARGV[2])
local ids = redis.call('ZRANGEBYSCORE', due, '-inf', now, 'LIMIT', 0, limit)
local recs = {}
for i, id in ipairs(ids) do
  recs[i] = redis.call('HMGET', prefix .. id, 'n', 'b', 'a', 'k', 'g', 'p')
end
for i, id in ipairs(ids) do
  local rk = prefix .. id
  local r = recs[i]
  if r[1] then
    enqueue(stream, rk, id, r[1], r[2] or '', r[3] or '1', r[4] or '', r[5] or '1', r[6] or '')
    if r[4] ~= '1' then redis.call('DEL', rk) end
  end
end
if #ids > 0 then redis.call('ZREM', due, unpack(ids)) end
local head = redis.call('ZRANGE', due, 0, 0, 'WITHSCORES')
-- now's microseconds within its millisecond: the mover sleeps to the head without rounding
return {#ids, head[2] or '-1', now, tonumber(_t[2]) % 1000}
"""
)

COMPLETE = (
    _NOW
    + _PARK
    + _ENQUEUE
    + """
-- KEYS: stream, due, dead, [outbox]. With an outbox (Redis Cluster: the result key is in
-- another slot) results go into it instead of their own keys (see outbox.py).
-- ARGV: group, consumer, run prefix, wake, queue, then per entry
-- the values of one entries.CommitEntry: msgid, id, keyed, gen, action (ack|again|dead),
-- when_ms, body, attempt, fn, reason, result_key, result_value, result_ttl_ms (0: no
-- expiry), fence. Returns 1
-- (committed) or 0 (stale) per entry: with fence '1', a runner that lost its lease (the
-- entry is no longer pending under its name) cannot commit a second outcome.
local stream, due, dead, outbox = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local group, consumer, prefix, wake, queue = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local out = {}
local j = 6
if outbox then
  -- a cluster: touch every run record before the first write, so a record a slot migration
  -- already moved fails the script with nothing written (the commit is retried)
  local c = 6
"""
    + COMMIT_LAYOUT.unpack("c")
    + """    redis.call('EXISTS', prefix .. id)
  end
end
"""
    + COMMIT_LAYOUT.unpack()
    + """  local ok = true
  if fence == '1' then
    local pend = redis.call('XPENDING', stream, group, mid, mid, 1)
    ok = (#pend == 1 and pend[1][2] == consumer)
  end
  if ok then
    if rkey ~= '' then
      if outbox then
        redis.call('HSET', outbox, 'v:' .. rkey, rval, 'm:' .. rkey, mid .. ' ' .. rttl .. ' ' .. string.format('%d', now))
      else
        if rttl == '0' then redis.call('SET', rkey, rval) else redis.call('SET', rkey, rval, 'PX', rttl) end
        redis.call('PUBLISH', rkey, rval)
      end
    end
    local rk = prefix .. id
    local live = true
    if k == '1' then
      local cur = redis.call('HGET', rk, 'g')
      live = (cur == g)
    end
    if action == 'again' then
      if live then
        local p = ''
        if k == '1' then p = redis.call('HGET', rk, 'p') or '' end
        if w == '' or tonumber(w) <= now then
          enqueue(stream, rk, id, n, b, a, k, g, p)
        else
          park(due, rk, wake, id, w, n, b, a, k, g, p)
        end
      end
    else
      if action == 'dead' then
        redis.call('XADD', dead, 'MAXLEN', '~', 100000, '*', 'i', id, 'n', n, 'b', b, 'a', a,
          'k', k, 'g', g, 'q', queue, 'r', reason, 'm', mid, 't', now)
      end
      if k == '1' and live then redis.call('DEL', rk) end
    end
    redis.call('XACK', stream, group, mid)
    redis.call('XDEL', stream, mid)
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
return out
"""
)

RENEW = """
-- KEYS: stream. ARGV: group, consumer, msgids... Resets the idle time of entries this
-- consumer still owns; returns the ids it no longer owns (its lease was lost).
local stream, group, consumer = KEYS[1], ARGV[1], ARGV[2]
local lost = {}
for j = 3, #ARGV do
  local mid = ARGV[j]
  local pend = redis.call('XPENDING', stream, group, mid, mid, 1)
  if #pend == 1 and pend[1][2] == consumer then
    redis.call('XCLAIM', stream, group, consumer, 0, mid, 'JUSTID')
  else
    lost[#lost + 1] = mid
  end
end
return lost
"""

HANDBACK = """
-- KEYS: stream. ARGV: group, consumer, run prefix, msgids... Re-adds entries this consumer
-- read but never started, so other workers take them at once instead of after a lease.
-- Reads first (a cluster: a run record moved by a slot migration fails before any write).
local stream, group, consumer, prefix = KEYS[1], ARGV[1], ARGV[2], ARGV[3]
local mine, seen = {}, {}
for j = 4, #ARGV do
  local mid = ARGV[j]
  local pend = redis.call('XPENDING', stream, group, mid, mid, 1)
  if #pend == 1 and pend[1][2] == consumer and not seen[mid] then
    seen[mid] = true
    local e = redis.call('XRANGE', stream, mid, mid)
    local fields, rk = false, false
    if #e == 1 then
      fields = e[1][2]
      for f = 1, #fields, 2 do
        if fields[f] == 'k' and fields[f+1] == '1' then
          for h = 1, #fields, 2 do
            if fields[h] == 'i' then rk = prefix .. fields[h+1] end
          end
        end
      end
      if rk then redis.call('EXISTS', rk) end
    end
    mine[#mine + 1] = {mid, fields, rk}
  end
end
for _, m in ipairs(mine) do
  local mid, fields, rk = m[1], m[2], m[3]
  if fields then
    local nid = redis.call('XADD', stream, '*', unpack(fields))
    if rk then redis.call('HSET', rk, 'm', nid) end
  end
  redis.call('XACK', stream, group, mid)
  redis.call('XDEL', stream, mid)
end
return #mine
"""

CANCEL = """
-- KEYS: stream, due, run key. ARGV: group, id. Removes parked or not-yet-delivered work.
-- Returns the state it found: parked, queued, running or missing.
local stream, due, rk, group, id = KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2]
local cur = redis.call('HMGET', rk, 's', 'm')
if not cur[1] then return 'missing' end
if cur[1] == 'parked' then
  redis.call('ZREM', due, id)
  redis.call('DEL', rk)
  return 'parked'
end
if cur[2] then
  local ok, pend = pcall(redis.call, 'XPENDING', stream, group, cur[2], cur[2], 1)
  if ok and #pend == 1 then
    redis.call('DEL', rk)
    return 'running'
  end
  redis.call('XDEL', stream, cur[2])
end
redis.call('DEL', rk)
return 'queued'
"""

ACK_FAST = (
    """
-- KEYS: stream, [outbox] (as COMPLETE's). ARGV: group, then per entry the values of one
-- entries.FastAck: msgid,
-- result_key, result_value, result_ttl_ms. For plain acks of entries read less than half a lease ago (no other worker
-- can have claimed them yet). XACK answers 1 only for the first ack of an entry, so at most
-- one outcome is ever committed; returns 1 (committed) or 0 per entry.
local stream, outbox, group = KEYS[1], KEYS[2], ARGV[1]
local out, gone = {}, {}
local now
local j = 2
"""
    + FAST_ACK_LAYOUT.unpack()
    + """  if redis.call('XACK', stream, group, mid) == 1 then
    gone[#gone + 1] = mid
    if rkey ~= '' and outbox then
      if not now then
        local t = redis.call('TIME')
        now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
      end
      redis.call('HSET', outbox, 'v:' .. rkey, rval, 'm:' .. rkey, mid .. ' ' .. rttl .. ' ' .. string.format('%d', now))
    elseif rkey ~= '' then
      if rttl == '0' then redis.call('SET', rkey, rval) else redis.call('SET', rkey, rval, 'PX', rttl) end
      redis.call('PUBLISH', rkey, rval)
    end
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
if #gone > 0 then redis.call('XDEL', stream, unpack(gone)) end
return out
"""
)

PURGE = """
-- KEYS: stream, due. ARGV: group, run prefix, start ('' : after the group's last delivery),
-- limit. Deletes entries never delivered to a worker (keeping perpetual ones), then, on the
-- first call, parked non-perpetual executions. Returns {removed, last id seen, seen, parked}.
local stream, due = KEYS[1], KEYS[2]
local group, prefix, start, limit = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
if start == '' then
  start = '-'
  local ok, groups = pcall(redis.call, 'XINFO', 'GROUPS', stream)
  if ok then
    for _, g in ipairs(groups) do
      local name, last
      for i = 1, #g, 2 do
        if g[i] == 'name' then name = g[i + 1] elseif g[i] == 'last-delivered-id' then last = g[i + 1] end
      end
      if name == group and last and last ~= '0-0' then start = '(' .. last end
    end
  end
end
local entries = redis.call('XRANGE', stream, start, '+', 'COUNT', limit)
-- All reads (run records included) come before the first write: on a cluster, a record a
-- slot migration already moved fails the script with nothing written.
local removed, last, gone, forget = 0, '', {}, {}
for _, e in ipairs(entries) do
  last = e[1]
  local f = e[2]
  local id, keyed, perpetual = nil, false, false
  for i = 1, #f, 2 do
    if f[i] == 'i' then id = f[i + 1]
    elseif f[i] == 'k' and f[i + 1] == '1' then keyed = true
    elseif f[i] == 'p' and f[i + 1] == '1' then perpetual = true end
  end
  if not perpetual then
    gone[#gone + 1] = e[1]
    if keyed and id and redis.call('HGET', prefix .. id, 'm') == e[1] then
      forget[#forget + 1] = prefix .. id
    end
  end
end
local unpark = {}
if ARGV[3] == '' then
  local ids = redis.call('ZRANGE', due, 0, -1)
  for _, id in ipairs(ids) do
    if redis.call('HGET', prefix .. id, 'p') ~= '1' then unpark[#unpark + 1] = id end
  end
end
for _, rk in ipairs(forget) do redis.call('DEL', rk) end
for i = 1, #gone, 500 do
  redis.call('XDEL', stream, unpack(gone, i, math.min(i + 499, #gone)))
end
removed = #gone
for _, id in ipairs(unpark) do
  redis.call('ZREM', due, id)
  redis.call('DEL', prefix .. id)
end
return {removed, last, #entries, #unpark}
"""

PARKED = """
-- KEYS: due. ARGV: run prefix, limit. The soonest parked executions with their records:
-- id, due ms, body, perpetual flag (4 values each), in one round trip.
local rows = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[2]) - 1, 'WITHSCORES')
local out = {}
for i = 1, #rows, 2 do
  local r = redis.call('HMGET', ARGV[1] .. rows[i], 'b', 'p')
  out[#out + 1] = rows[i]
  out[#out + 1] = rows[i + 1]
  out[#out + 1] = r[1] or false
  out[#out + 1] = r[2] or ''
end
return out
"""
