import { performance } from 'node:perf_hooks'
import { afterEach, describe, expect, it } from 'vitest'
import {
  bearer,
  burstAll,
  expectCleanExits,
  failures,
  gateTo,
  kindOf,
  ownRedis,
  redisPid,
  redisServerForFile,
  sharedSession,
  since,
  startWorkers,
  tokenServer,
  UNAVAILABLE,
  uniqueKey,
  untilRedis,
} from './support.js'

// Regression tests for two defects of the Redis driver found across real processes, each
// reproduced with real processes, a real redis-server and a real token server:
//
// A. A logout made during an outage was undone on recovery when another process had refreshed
//    more than once during the outage: versions alone could not order the two.
// B. After Redis stalled longer than `refreshTimeout`, a `SET NX` that had timed out on the
//    client but ran later left a lock nobody owned: every refresh waited out its lockTtl.

const redis = redisServerForFile()
/** Redis processes a test SIGSTOPped: resumed after it (before the cleanup), whatever happened in it. */
const stopped = new Set<number>()

afterEach(() => {
  for (const pid of stopped) process.kill(pid, 'SIGCONT')
  stopped.clear()
})

/**
 * `promise`, or after `ms` a failure that says what the processes and the record show. Not a
 * synchronisation: the fixed driver settles long before; the bound only turns the old
 * driver's "never" into a readable failure.
 */
function within<T>(promise: Promise<T>, ms: number, what: () => Promise<string>): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      what().then(
        (shown) => reject(new Error(`not within ${ms} ms: ${shown}`)),
        (error: unknown) => reject(new Error(`not within ${ms} ms (${String(error)})`)),
      )
    }, ms)
  })
  return Promise.race([promise, late]).finally(() => clearTimeout(timer))
}

/** The record's version, kind and sign-in id: none of them secret. */
const recordOf = (key: string) => redis.command(['HMGET', `${key}:record`, 'v', 'k', 'i'])

describe('A: a logout made during an outage survives the recovery', () => {
  // The recovery order is forced with one gate (a TCP relay, support.ts) per process: both
  // are cut together, and on recovery one gate opens first; the second opens only once the
  // first process's resync is visible in Redis (the record it writes), so the second process
  // resyncs against it. Redis keeps running throughout: this outage is a network partition.
  it.each([
    ['the process that logged out resyncs first', 'leaver'],
    ['the process that refreshed resyncs first', 'refresher'],
  ] as const)(
    '%s',
    async (_, first) => {
      // Rotation on, as in production: only the refresher spends refresh tokens here.
      const server = await tokenServer()
      const key = uniqueKey('outages')
      const [gateL, gateR] = [await gateTo(redis), await gateTo(redis)]
      const base = { serverUrl: server.url, key }

      const [leaver] = await startWorkers(1, { ...base, redisUrl: gateL.url }, 1)
      if (!leaver) throw new Error('no worker')
      await leaver.send('login', { tokens: server.login() })
      const [version, kind, signIn] = (await untilRedis(
        redis,
        ['HMGET', `${key}:record`, 'v', 'k', 'i'],
        (reply) => Array.isArray(reply) && reply[0] === '1',
      )) as string[]
      expect([version, kind]).toEqual(['1', 's'])
      expect(signIn).toMatch(/^\S{8,}$/)
      const [refresher] = await startWorkers(1, { ...base, redisUrl: gateR.url }, 2)
      if (!refresher) throw new Error('no worker')
      const login = (await leaver.state()).token
      expect(await refresher.ready).toMatchObject({ state: 'authenticated', token: login })

      // The outage: both processes lose Redis.
      gateL.cut()
      gateR.cut()
      await Promise.all(
        [leaver, refresher].map((w) => w.send('waitWarnings', { pattern: UNAVAILABLE, count: 1 })),
      )
      // The refresher refreshes alone twice (it now believes version 3) …
      for (let round = 1; round <= 2; round++) {
        server.expireAccessTokens()
        expect(failures(await burstAll([refresher], 3)), `round ${round}`).toEqual([])
      }
      expect(server.counters.refreshCalls).toBe(2)
      // … and the leaver logs out (it believes version 2, an end). Neither reaches Redis.
      expect(await leaver.send('logout', {})).toMatchObject({ state: 'loggedOut' })
      expect(await recordOf(key)).toEqual(['1', 's', signIn])
      await Promise.all([leaver.state(true), refresher.state(true)])

      // What the processes and the record show, for a failure message (the id is not secret).
      const shown = async () => {
        const [l, r] = await Promise.all([leaver.state(), refresher.state()])
        return `record ${JSON.stringify(await recordOf(key))}, leaver ${l.state} ${JSON.stringify(l.history)}, refresher ${r.state} ${JSON.stringify(r.history)}`
      }
      const started = performance.now()
      if (first === 'leaver') {
        gateL.open()
        // The leaver writes its end at the version it believes.
        await untilRedis(redis, ['HMGET', `${key}:record`, 'v', 'k'], (r) => String(r) === '2,e')
        gateR.open()
        // The refresher's session (version 3) is refused over its sign-in's end; it takes the end.
        await within(refresher.send('waitState', { state: 'loggedOut' }), 5_000, shown)
        expect(await recordOf(key)).toEqual(['2', 'e', signIn])
      } else {
        gateR.open()
        // The refresher puts back its session, version 3, over the login's version 1.
        await untilRedis(redis, ['HMGET', `${key}:record`, 'v', 'k'], (r) => String(r) === '3,s')
        gateL.open()
        // The leaver's end outranks its sign-in's session whatever the versions: written above.
        await within(refresher.send('waitState', { state: 'loggedOut' }), 5_000, shown)
        expect(await recordOf(key)).toEqual(['4', 'e', signIn])
      }
      const recoveredMs = since(started)

      // Nobody is signed in again, and the leaver never was after its logout.
      expect(await leaver.state()).toMatchObject({ state: 'loggedOut', history: ['loggedOut'] })
      expect(await refresher.state()).toMatchObject({
        state: 'loggedOut',
        history: ['authenticated', 'loggedOut'],
      })
      const mark = server.requests.length
      const after = await burstAll([leaver, refresher], 1, '/api/after-recovery')
      expect(after.map((report) => report.statuses)).toEqual([[401], [401]])
      expect(server.requests.slice(mark).filter((r) => bearer(r) !== undefined)).toEqual([])
      // No refresh since the outage's two, and never a reuse.
      expect(server.counters).toMatchObject({ refreshCalls: 2, reuseDetections: 0 })
      for (const worker of [leaver, refresher]) {
        const warnings = await worker.send('warnings', {})
        expect(warnings.map(kindOf), worker.id).toEqual(['unavailable', 'reachable'])
      }
      console.log(
        `[redis] A (${first} first): record ${JSON.stringify(await recordOf(key))} (sign-in id elided), both loggedOut ${recoveredMs}ms after the first gate opened; refreshCalls=${server.counters.refreshCalls} reuse=${server.counters.reuseDetections}`.replace(
          signIn ?? '',
          '<id>',
        ),
      )
      await expectCleanExits([leaver, refresher])
    },
    30_000,
  )
})

describe('B: a lock left by a stalled Redis is released when it answers again', () => {
  // Short timings keep the test fast; the orphan lock still has most of its TTL left when the
  // next expiry comes, so a refresh that completes well within it proves it was released.
  const REFRESH_TIMEOUT = 1_000
  const LOCK_TTL = 8_000

  it('the next expiry after the stall gets one refresh, long before the orphan lock expires', async () => {
    // Its own redis-server: this one is SIGSTOPped. Rotation off: during the stall each
    // process refreshes alone with the same refresh token (by design), which a rotating server
    // would count as reuse and answer by revoking the session family.
    const stalling = await ownRedis()
    const pid = await redisPid(stalling)
    expect(pid).toBeGreaterThan(0)
    const server = await tokenServer({ rotateRefreshTokens: false })
    const key = uniqueKey('outages')
    const lockKey = `${key}:lock`
    const config = {
      serverUrl: server.url,
      redisUrl: stalling.url,
      key,
      refreshTimeout: REFRESH_TIMEOUT,
      lockTtl: LOCK_TTL,
    }
    const { workers } = await sharedSession(server, stalling, 3, config)

    // The stall (a fork for BGSAVE, a failover, a paused VM): connections stay open, nothing
    // answers. Each process's `SET NX PX` goes out, times out after refreshTimeout, and the
    // process refreshes alone.
    process.kill(pid, 'SIGSTOP')
    stopped.add(pid)
    const stallStart = performance.now()
    server.expireAccessTokens()
    expect(failures(await burstAll(workers, 3))).toEqual([])
    const stallMs = since(stallStart)
    const stallRefreshes = server.counters.refreshCalls
    expect(stallRefreshes).toBe(3)
    await Promise.all(
      workers.map((w) => w.send('waitWarnings', { pattern: UNAVAILABLE, count: 1 })),
    )
    process.kill(pid, 'SIGCONT')
    stopped.delete(pid)

    // Redis now runs the commands it was sent: one `SET NX PX` takes the lock, for a process
    // that gave up on it. Nothing renews it; the process releases it once it hears Redis
    // again (a reply, or its PING a second), which may be before this test looks.

    server.expireAccessTokens()
    const started = performance.now()
    const reports = await burstAll(workers, 3)
    const expiryMs = since(started)
    expect(failures(reports)).toEqual([])
    // Shared again: one refresh for the three processes, everyone on its token.
    expect(server.counters.refreshCalls - stallRefreshes).toBe(1)
    expect(new Set(reports.map((report) => report.token)).size).toBe(1)
    // Well before the orphan lock would have expired by itself (the old driver waited it out).
    expect(expiryMs).toBeLessThan(LOCK_TTL / 4)
    // No lock outlives the burst: a refresh abandoned when the news arrived first may still
    // be releasing the lock it took to read the record, for a round trip or two.
    await untilRedis(stalling, ['EXISTS', lockKey], (n) => n === 0, 1_000)
    for (const worker of workers) {
      const warnings = await worker.send('warnings', {})
      expect(warnings.map(kindOf), worker.id).toEqual(['unavailable', 'reachable'])
    }
    expect(server.counters.reuseDetections).toBe(0)
    console.log(
      `[redis] B stall: ${stallMs}ms stalled, ${stallRefreshes} in-process refreshes; next expiry: ${server.counters.refreshCalls - stallRefreshes} refresh in ${expiryMs}ms (bound ${LOCK_TTL / 4}ms)`,
    )
    await expectCleanExits(workers)
  }, 30_000)
})
