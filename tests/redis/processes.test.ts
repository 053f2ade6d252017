import { performance } from 'node:perf_hooks'
import { describe, expect, it } from 'vitest'
import {
  type BurstReport,
  bearer,
  burstAll,
  configFor,
  dumpRedis,
  expectCleanExits,
  failures,
  leaks,
  OTHER_SECRET,
  ownRedis,
  presentedRefreshToken,
  REACHABLE,
  redisServerForFile,
  refreshSenders,
  SECRET,
  sharedSession,
  since,
  startWorkers,
  tokenServer,
  UNAVAILABLE,
  UNREADABLE,
  untilRedis,
} from './support.js'

// Real processes, a real redis-server, a real token server on loopback: nothing here is a
// mock. Every figure is printed on one line per scenario so a run shows what it measured.

const LOCK_TTL = 2_000
const REFRESH_TIMEOUT = 5_000

// Whatever a test left running (a failed assertion skips its own exits) is killed after it.
const redis = redisServerForFile()

/** Each settles to its report or to the error that ended it: a killed worker rejects. */
function settled(burst: Promise<BurstReport>): Promise<BurstReport | Error> {
  return burst.catch((error: unknown) =>
    error instanceof Error ? error : new Error(String(error)),
  )
}

describe('redisCoordinator across real Node processes', () => {
  it.each([2, 4, 8, 16])(
    '%i processes, one expiry: one refresh for all',
    async (n) => {
      const server = await tokenServer()
      const started = performance.now()
      const { workers } = await sharedSession(server, redis, n, configFor(server, redis))
      const startMs = since(started)
      const adopted = await Promise.all(workers.map((worker) => worker.ready))
      // Each later process adopted the first one's session at `ready`, before any request.
      const login = (await workers[0]?.state())?.token
      for (const report of adopted.slice(1)) {
        expect(report).toMatchObject({ state: 'authenticated', hasSession: true, token: login })
      }

      server.expireAccessTokens()
      const burstStart = performance.now()
      const reports = await burstAll(workers, 10)
      const burstMs = since(burstStart)

      expect(failures(reports)).toEqual([])
      expect(server.counters.refreshCalls).toBe(1)
      expect(server.counters.refreshSuccesses).toBe(1)
      expect(server.counters.reuseDetections).toBe(0)
      expect(server.counters.protectedOk).toBe(n * 10)
      // Everyone ends on the one refreshed token.
      expect(new Set(reports.map((report) => report.token))).toEqual(new Set([reports[0]?.token]))
      expect(reports[0]?.token).not.toBe(login)
      console.log(
        `[redis] ${n} processes: refreshCalls=${server.counters.refreshCalls} reuse=${server.counters.reuseDetections} ok=${server.counters.protectedOk}/${n * 10} unauthorized=${server.counters.unauthorized} start=${startMs}ms burst=${burstMs}ms`,
      )
      await expectCleanExits(workers)
    },
    60_000,
  )

  it('20 expiries × 4 processes: exactly 20 refreshes, no reuse', async () => {
    const server = await tokenServer()
    const { workers } = await sharedSession(server, redis, 4, configFor(server, redis))
    const started = performance.now()
    const holders = new Map<string, number>()
    for (let round = 1; round <= 20; round++) {
      server.expireAccessTokens()
      const reports = await burstAll(workers, 5)
      expect(failures(reports), `round ${round}`).toEqual([])
      // Checked per round: a second refresh shows in the round that made it.
      expect(server.counters.refreshCalls, `round ${round}`).toBe(round)
      expect(server.counters.reuseDetections, `round ${round}`).toBe(0)
      const holder = refreshSenders(server).at(-1) ?? '?'
      holders.set(holder, (holders.get(holder) ?? 0) + 1)
    }
    expect(server.counters.protectedOk).toBe(20 * 4 * 5)
    console.log(
      `[redis] 20 rounds × 4: refreshCalls=${server.counters.refreshCalls} reuse=${server.counters.reuseDetections} ok=${server.counters.protectedOk}/400 holders=${JSON.stringify(Object.fromEntries(holders))} ${since(started)}ms`,
    )
    await expectCleanExits(workers)
  }, 60_000)

  it('the lock holder is SIGKILLed mid-refresh: the others take over after lockTtl', async () => {
    const server = await tokenServer()
    const config = configFor(server, redis, { lockTtl: LOCK_TTL, refreshTimeout: REFRESH_TIMEOUT })
    const { workers, tokens } = await sharedSession(server, redis, 4, config)

    const hold = server.hold('/auth/refresh')
    server.expireAccessTokens()
    const bursts = new Map(workers.map((worker) => [worker, settled(worker.burst(5))]))
    await hold.untilWaiting(1)
    // One refresh reached the server; its query names the process holding the lock.
    const [holderId, ...more] = refreshSenders(server)
    expect(more).toEqual([])
    const holder = workers.find((worker) => worker.id === holderId)
    if (!holder) throw new Error(`no worker ${holderId}`)
    const lockLeftMs = await redis.command(['PTTL', `${config.key}:lock`])

    const killedAt = performance.now()
    await holder.kill()
    // The server sees the client hang up. A released hold still processes its request
    // (holds.ts: "like a real server"), which would spend the refresh token and make the
    // survivors' refresh a reuse. So that one call meets a 'hang' fault on release: the
    // fault is taken before the store, and the token is never spent.
    // (Counted against the calls so far, so a second call, a defect, cannot hang this wait.)
    await server.waitFor((s) => s.refreshInFlight === s.counters.refreshCalls - 1)
    // Still the only refresh call: nobody took the lock while its holder was alive.
    expect(server.counters.refreshCalls).toBe(1)
    server.failNextRefresh('hang')
    hold.release()
    await server.waitFor((s) => s.counters.refreshFailures === 1)

    const survivors = workers.filter((worker) => worker !== holder)
    const reports = await Promise.all(survivors.map((worker) => bursts.get(worker)))
    const recoveredMs = since(killedAt)
    expect(await bursts.get(holder)).toBeInstanceOf(Error)
    const ok = reports.filter((report): report is BurstReport => !(report instanceof Error))
    expect(ok).toHaveLength(3)
    expect(failures(ok)).toEqual([])
    expect(recoveredMs).toBeLessThan(LOCK_TTL + REFRESH_TIMEOUT)

    // Two calls: the dead one (hung, never exchanged) and one survivor's, which presented the
    // very same refresh token and got new tokens: nothing was spent twice.
    const calls = server.requests.filter((request) => request.path === '/auth/refresh')
    expect(calls.map(presentedRefreshToken)).toEqual([tokens.refreshToken, tokens.refreshToken])
    expect(refreshSenders(server)[1]).not.toBe(holderId)
    expect(server.counters).toMatchObject({
      refreshCalls: 2,
      refreshSuccesses: 1,
      refreshFailures: 1,
      reuseDetections: 0,
      protectedOk: 15,
    })
    console.log(
      `[redis] holder SIGKILLed: holder=${holderId} lockTtl=${LOCK_TTL} pttlAtKill=${String(lockLeftMs)}ms survivors done ${recoveredMs}ms after kill (bound ${LOCK_TTL + REFRESH_TIMEOUT}) refreshCalls=${server.counters.refreshCalls} successes=${server.counters.refreshSuccesses} reuse=${server.counters.reuseDetections}`,
    )
    await expectCleanExits(survivors)
  }, 60_000)

  it('redis-server killed and restarted empty: no session lost, one refresh per expiry again', async () => {
    // Its own redis-server: this one is killed. Rotation off: during the outage each process
    // refreshes alone with the same refresh token (by design), which a rotating server would
    // count as reuse and answer by revoking the family, logging every process out.
    const outageRedis = await ownRedis()
    const server = await tokenServer({ rotateRefreshTokens: false })
    const config = configFor(server, outageRedis)
    const { workers } = await sharedSession(server, outageRedis, 4, config)

    server.expireAccessTokens()
    expect(failures(await burstAll(workers, 5))).toEqual([])
    expect(server.counters.refreshCalls).toBe(1)
    await Promise.all(workers.map((worker) => worker.state(true)))

    await outageRedis.kill()
    const outageStart = performance.now()
    const beforeOutage = server.counters.refreshCalls
    for (let round = 1; round <= 3; round++) {
      server.expireAccessTokens()
      const reports = await burstAll(workers, 5)
      expect(failures(reports), `outage round ${round}`).toEqual([])
    }
    const outageRefreshes = server.counters.refreshCalls - beforeOutage
    const outageMs = since(outageStart)
    await Promise.all(
      workers.map((worker) => worker.send('waitWarnings', { pattern: UNAVAILABLE, count: 1 })),
    )

    await outageRedis.restart()
    const restartedAt = performance.now()
    await Promise.all(
      workers.map((worker) => worker.send('waitWarnings', { pattern: REACHABLE, count: 1 })),
    )
    await untilRedis(outageRedis, ['HGET', `${config.key}:record`, 'v'], (v) => v !== null)
    const repopulatedMs = since(restartedAt)

    const afterRestart: number[] = []
    for (let round = 1; round <= 3; round++) {
      const before = server.counters.refreshCalls
      server.expireAccessTokens()
      const reports = await burstAll(workers, 5)
      expect(failures(reports), `after restart, round ${round}`).toEqual([])
      afterRestart.push(server.counters.refreshCalls - before)
    }
    expect(afterRestart).toEqual([1, 1, 1])

    for (const report of await Promise.all(workers.map((worker) => worker.state()))) {
      // Refreshing alone is fine; losing the session is not.
      expect(report.history, report.id).not.toContain('loggedOut')
      expect(report.history, report.id).not.toContain('expired')
      expect(report.state, report.id).toBe('authenticated')
    }
    for (const worker of workers) {
      // Exactly one warning per outage and one on recovery, nothing else.
      const warnings = await worker.send('warnings', {})
      expect(warnings, worker.id).toHaveLength(2)
      expect(warnings[0], worker.id).toContain(UNAVAILABLE)
      expect(warnings[1], worker.id).toContain(REACHABLE)
    }
    expect(server.counters.reuseDetections).toBe(0)
    console.log(
      `[redis] outage: 3 rounds in ${outageMs}ms with ${outageRefreshes} in-process refreshes (not asserted), record back ${repopulatedMs}ms after restart, refreshes per expiry after=${JSON.stringify(afterRestart)} reuse=${server.counters.reuseDetections} warnings=1+1 per process`,
    )
    await expectCleanExits(workers)
  }, 60_000)

  it('a logout in one process ends the session in every other within 1 s', async () => {
    const server = await tokenServer()
    const { workers } = await sharedSession(server, redis, 4, configFor(server, redis))
    server.expireAccessTokens()
    expect(failures(await burstAll(workers, 2))).toEqual([])
    const [leaver, ...others] = workers
    if (!leaver) throw new Error('no worker')
    const old = await leaver.send('session', {})
    if (!old) throw new Error('expected a session')
    // Round trips first, so each process is idle and listening when the clock starts.
    await Promise.all(others.map((worker) => worker.state()))

    const mark = server.requests.length
    const loggedOutAt = performance.now()
    const seen = others.map((worker) =>
      worker.send('waitState', { state: 'loggedOut' }).then(() => since(loggedOutAt)),
    )
    await leaver.send('logout', {})
    const delays = await Promise.all(seen)
    expect(Math.max(...delays)).toBeLessThan(1_000)

    const after = await burstAll(others, 1, '/api/after-logout')
    // Signed out: each request goes out without a token and the server answers 401.
    expect(after.map((report) => report.statuses)).toEqual(others.map(() => [401]))
    const sent = server.requests.slice(mark)
    expect(sent).toHaveLength(others.length)
    expect(sent.filter((request) => bearer(request) === old.accessToken)).toEqual([])
    expect(sent.filter((request) => request.authorization !== undefined)).toEqual([])
    expect(server.counters.refreshCalls).toBe(1)
    console.log(
      `[redis] logout: others loggedOut after ${JSON.stringify(delays)}ms (max ${Math.max(...delays)}), ${sent.length} later requests, ${sent.filter((r) => r.authorization !== undefined).length} with a token`,
    )
    await expectCleanExits(workers)
  }, 60_000)

  it('with a secret no token is readable in Redis, and a wrong secret reads nothing', async () => {
    const server = await tokenServer()
    const config = configFor(server, redis, { secret: SECRET })
    const { workers, tokens } = await sharedSession(server, redis, 3, config)
    server.expireAccessTokens()
    expect(failures(await burstAll(workers, 5))).toEqual([])
    expect(server.counters.refreshCalls).toBe(1)
    const current = await workers[0]?.send('session', {})
    if (!current?.refreshToken) throw new Error('expected a rotated session')
    const secrets = {
      loginAccess: tokens.accessToken,
      loginRefresh: tokens.refreshToken,
      currentAccess: current.accessToken,
      currentRefresh: current.refreshToken,
    }
    expect(current.refreshToken).not.toBe(tokens.refreshToken)

    const dump = await dumpRedis(redis)
    const record = dump.get(`${config.key}:record`)
    // The record is there, sealed: its data field is the cipher's envelope.
    const data = record?.[(record?.indexOf('d') ?? -1) + 1]
    expect(data).toMatch(/^v1\.[\w-]+\.[\w-]+\.[\w-]+$/)
    const values = [...dump.values()].flat()
    expect(leaks(values, secrets)).toEqual([])
    // The scan can fail: the tokens are found base64-encoded alone, or inside an encoded record.
    const planted = Object.values(secrets).map((t) => Buffer.from(t).toString('base64'))
    expect(leaks(planted, secrets)).toEqual(Object.keys(secrets))
    const wrapped = Buffer.from(JSON.stringify({ x: 1, ...secrets })).toString('base64url')
    expect(leaks([`v1.${wrapped}`], secrets)).toEqual(Object.keys(secrets))

    // A process with another secret: the record is unreadable, so absent; one warning.
    const [intruder] = await startWorkers(1, { ...config, secret: OTHER_SECRET }, 9)
    if (!intruder) throw new Error('no worker')
    expect(await intruder.ready).toMatchObject({ state: 'loggedOut', hasSession: false })
    server.expireAccessTokens()
    // A new record is written and announced: the intruder reads it again (when, this test
    // cannot see), unreadable again, and stays signed out without a second warning.
    expect(failures(await burstAll(workers, 5))).toEqual([])
    const [intruderBurst] = await burstAll([intruder], 2, '/api/intruder')
    expect(intruderBurst?.statuses).toEqual([401, 401])
    expect(intruderBurst).toMatchObject({ state: 'loggedOut', hasSession: false })
    const warnings = await intruder.send('warnings', {})
    expect(warnings).toHaveLength(1)
    expect(warnings[0]).toContain(UNREADABLE)
    const intruderRequests = server.requests.filter((r) => r.path === '/api/intruder')
    expect(intruderRequests.filter((r) => r.authorization !== undefined)).toEqual([])
    expect(server.counters.refreshCalls).toBe(2)
    expect(server.counters.reuseDetections).toBe(0)
    console.log(
      `[redis] secret: ${dump.size} keys scanned (${values.length} values), leaks=${leaks(values, secrets).length}, wrong-secret process: ${intruderBurst?.state}, warnings=${warnings.length}, refreshCalls=${server.counters.refreshCalls}`,
    )
    await expectCleanExits([...workers, intruder])
  }, 60_000)
})
