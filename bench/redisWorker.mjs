// One process of the Redis throughput benchmark, forked by bench/redis.mjs: an auth.fetch
// client (bench/redisClient.mjs) driven over the IPC channel.
//
//   fork('bench/redisWorker.mjs', [serverUrl, redisUrl | '-', key])
//
// Tells the parent { type: 'ready', state } once `auth.ready` resolved (an adopted session
// shows as `authenticated`); then answers
//   { type: 'login', tokens }      → { type: 'loggedIn' }
//   { type: 'warm', requests }     → { type: 'warmed' }
//   { type: 'run', ms, loops }     → { type: 'done', ok, slowestMs, statuses, errors, ended,
//                                      warnings }
// and exits when the parent says { type: 'exit' } or goes away.

import { createRedisClient, stateOf } from '../scripts/redis-client.mjs'

const [serverUrl, redisUrl, key] = process.argv.slice(2)
const ENDED = ['expired', 'loggedOut']
let warnings = 0

const auth = createRedisClient({
  serverUrl,
  ...(redisUrl === '-' ? {} : { redis: { url: redisUrl, key } }),
  onWarning: (message) => {
    warnings += 1
    process.stderr.write(`worker ${process.pid}: ${message}\n`)
  },
})

/**
 * `loops` sequential request loops for `ms`. A loop stops early once the session has ended
 * (refresh token refused): from then on every request would reject without being sent, and
 * counting those would inflate the rate.
 */
async function run(ms, loops) {
  const until = performance.now() + ms
  const tally = { ok: 0, slowestMs: 0, statuses: {}, errors: {} }
  const count = (bucket, name) => {
    bucket[name] = (bucket[name] ?? 0) + 1
  }
  const loop = async () => {
    while (performance.now() < until && !ENDED.includes(stateOf(auth))) {
      const started = performance.now()
      try {
        const res = await auth.fetch(`${serverUrl}/api/resource`)
        // Read to the end: an unread body keeps its connection from being reused.
        await res.arrayBuffer()
        if (res.ok) tally.ok += 1
        else count(tally.statuses, res.status)
      } catch (error) {
        count(tally.errors, error?.name ?? typeof error)
      }
      tally.slowestMs = Math.max(tally.slowestMs, performance.now() - started)
    }
  }
  await Promise.all(Array.from({ length: loops }, loop))
  return { ...tally, ended: ENDED.includes(stateOf(auth)), warnings }
}

/** Unmeasured requests: a cold process (JIT, first connection) would otherwise be timed. */
async function warm(requests) {
  for (let i = 0; i < requests; i += 1) {
    const res = await auth.fetch(`${serverUrl}/api/resource`)
    await res.arrayBuffer()
    if (!res.ok) throw new Error(`warm-up request: HTTP ${res.status}`)
  }
}

async function onMessage(message) {
  if (message.type === 'login') {
    auth.login(message.tokens)
    process.send({ type: 'loggedIn' })
  } else if (message.type === 'warm') {
    await warm(message.requests)
    process.send({ type: 'warmed' })
  } else if (message.type === 'run') {
    process.send({ type: 'done', ...(await run(message.ms, message.loops)) })
  } else if (message.type === 'exit') {
    auth.dispose()
    process.exit(0)
  }
}

// An orphan must not keep running (or keep Redis connections open) if the parent dies.
process.on('disconnect', () => process.exit(0))
process.on('message', (message) => {
  onMessage(message).catch((error) => {
    process.stderr.write(`worker ${process.pid}: ${error?.stack ?? error}\n`)
    process.exit(1)
  })
})
await auth.ready
process.send({ type: 'ready', state: stateOf(auth) })
