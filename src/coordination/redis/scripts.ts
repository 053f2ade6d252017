// The Lua scripts the Redis driver runs. Each is one atomic step; none reads a token (the
// record's data may be sealed), only the version, kind and lock owner, which are not secret.

/** The record's fields, and the server's clock in ms: ages are measured on Redis' clock. */
export const READ = `
local t = redis.call('TIME')
local type = redis.call('TYPE', KEYS[1])['ok']
-- Not a hash (another program's value): an unreadable record, overwritten by the next write.
if type ~= 'hash' and type ~= 'none' then return { t[1], t[2], 'foreign' } end
local r = redis.call('HMGET', KEYS[1], 'v', 'k', 'd', 't', 'r', 'i')
return { t[1], t[2], r[1] or '', r[2] or '', r[3] or '', r[4] or '', r[5] or '', r[6] or '' }
`

/**
 * Compare-and-set on the version, the fencing token: written only over an older version. A
 * sign-in's end wins over every session of that sign-in whatever their versions (refreshes
 * made apart during an outage), and no session of an ended sign-in is written again; an end
 * never wins over another sign-in's session of the same version. Announced on the channel
 * in the same step. ARGV: version, kind ('s' | 'e'), data, reason ('l' | 'r'), channel, writer id,
 * sign-in id ('' when unknown). Returns the version written, or 0.
 */
export const WRITE = `
local type = redis.call('TYPE', KEYS[1])['ok']
if type ~= 'hash' and type ~= 'none' then redis.call('DEL', KEYS[1]) end
local cur = redis.call('HMGET', KEYS[1], 'v', 'k', 'i')
-- A version this library did not write (garbage, a fraction, beyond 15 digits) counts as none.
local current = 0
if cur[1] and string.match(cur[1], '^%d+$') and #cur[1] <= 15 then current = tonumber(cur[1]) end
local version = tonumber(ARGV[1])
local kind = ARGV[2]
local same = ARGV[7] ~= '' and cur[3] == ARGV[7]
-- Sign-ins unknown on either side (records of older versions) count as the same one.
local unknown = ARGV[7] == '' or not cur[3] or cur[3] == ''
if same and cur[2] == 'e' and kind == 's' then return 0 end
if same and cur[2] == 's' and kind == 'e' then
  if version <= current then version = current + 1 end
elseif current > version or (current == version and not (kind == 'e' and cur[2] == 's' and unknown)) then
  return 0
end
local t = redis.call('TIME')
local ms = string.format('%d', t[1] * 1000 + math.floor(t[2] / 1000))
redis.call('HSET', KEYS[1], 'v', version, 'k', kind, 'd', ARGV[3], 't', ms, 'r', ARGV[4], 'i', ARGV[7])
redis.call('PUBLISH', ARGV[5], cjson.encode({ v = version, k = kind, from = ARGV[6] }))
return version
`

/** Extends the lock while its owner still holds it. ARGV: owner, ttl. */
export const RENEW = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
`

/** Releases the lock only if its owner still holds it, and wakes the waiters. ARGV: owner, channel. */
export const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('PUBLISH', ARGV[2], '{"unlocked":true}')
  return 1
end
return 0
`
