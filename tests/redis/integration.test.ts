// Integration regressions of the Redis coordinator and the coordination refactor, first written
// as failing reproductions by an adversarial review (r2): the comment above each test says what
// failed before the fix. Real redis-server (startRedisServer), real token server
// (createTestAuthServer), real node-redis clients; the built package (dist/) is used as an app
// would. Run: npm run build --silent && npx vitest run tests/redis/integration.test.ts
//
// Waits are conditions with a deadline, never sleeps standing in for one: where a regression
// would be a state that never comes (a logout that never arrives, a connection never closed),
// a failing run waits out the deadline and a passing one returns at once.

import { spawn } from 'node:child_process'
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises'
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createClient } from 'redis'
import ts from 'typescript'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { type AuthClient, createAuthClient, memorySession } from '../../src/fetch.js'
import { type RedisClientLike, redisCoordinator } from '../../src/redis.js'
import type { TestAuthServer } from '../../src/testing/index.js'
import type { RedisServer } from './redisServer.js'
import {
  afterTest,
  commandCalls,
  gateTo,
  ownRedis,
  redisServerForFile,
  refreshAt,
  tokenServer,
  UNAVAILABLE,
  uniqueKey,
} from './support.js'

const repo = fileURLToPath(new URL('../../', import.meta.url))

const unhandled: unknown[] = []
const onUnhandled = (reason: unknown) => unhandled.push(reason)

beforeAll(() => {
  process.on('unhandledRejection', onUnhandled)
})

// Registered before the file's redis-server, so it runs after its cleanup: no path here,
// cleanup included, may end in an unhandled rejection.
afterEach(() => {
  expect(unhandled.splice(0).map(String)).toEqual([])
})

afterAll(() => {
  process.off('unhandledRejection', onUnhandled)
})

const redis = redisServerForFile()

const key = (name: string) => uniqueKey(`r2-${name}`)

interface Made {
  auth: AuthClient
  warnings: string[]
}

/** A client of `server` coordinated by `coordinator`; disposed after the test. */
function make(
  server: TestAuthServer,
  coordinator: Parameters<typeof redisCoordinator>[0],
  extra: Partial<Parameters<typeof createAuthClient>[0]> = {},
): Made {
  const warnings: string[] = []
  const auth = createAuthClient({
    refresh: refreshAt(`${server.url}/auth/refresh`),
    attachTo: [server.url],
    onWarning: (message) => warnings.push(message),
    coordinator: redisCoordinator(coordinator),
    ...extra,
  })
  afterTest(() => auth.dispose())
  return { auth, warnings }
}

const tokenOf = (client: Made) => client.auth.actor.getSnapshot().context.session?.accessToken
const stateOf = (client: Made) => {
  const value = client.auth.actor.getSnapshot().value
  return typeof value === 'string' ? value : Object.keys(value)[0]
}

/** Polls `met` until it holds or `ms` pass; returns whether it held. */
async function until(met: () => boolean | Promise<boolean>, ms = 3_000): Promise<boolean> {
  const deadline = Date.now() + ms
  for (;;) {
    if (await met()) return true
    if (Date.now() > deadline) return false
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

async function record(on: RedisServer, name: string) {
  const [v, k, i, d] = (await on.command(['HMGET', `${name}:record`, 'v', 'k', 'i', 'd'])) as (
    | string
    | null
  )[]
  const accessToken = d ? (JSON.parse(d) as { a: string }).a : undefined
  return { version: Number(v ?? 0), kind: k, id: i, accessToken }
}

const status = (auth: AuthClient, url: string) =>
  auth.fetch(url).then(
    (response) => response.status,
    (error: { name?: string }) => error?.name ?? 'error',
  )

describe('a logout and a stored session across partitions and restarts', () => {
  // Before the fix: the logout was undone (review r2, P0-1).
  it("a logout by a process that adopted the session at start survives a partitioned process's recovery", async () => {
    // The process that adopted the session at start ends it with its sign-in id, so the WRITE
    // script's "no session of an ended sign-in is written again" rule applies to the process
    // that refreshed twice while partitioned: ahead by version, it must not write it back.
    // (Before the fix, restore() kept no sign-in id and the end was written with id ''.)
    const server = await tokenServer()
    const name = key('lost-logout')
    const gate = await gateTo(redis)
    const first = make(server, { url: redis.url, key: name })
    await first.auth.ready
    first.auth.login(server.login())
    expect(await until(async () => (await record(redis, name)).version === 1)).toBe(true)
    const leaver = make(server, { url: redis.url, key: name }) // adopts at `ready`, as workers do
    const away = make(server, { url: gate.url, key: name })
    await Promise.all([leaver.auth.ready, away.auth.ready])
    first.auth.dispose()
    expect(tokenOf(leaver)).toBeDefined()
    expect(tokenOf(away)).toBe(tokenOf(leaver))

    gate.cut()
    for (let i = 0; i < 2; i += 1) {
      server.expireAccessTokens()
      expect(await status(away.auth, `${server.url}/api/data`)).toBe(200) // refreshed alone
    }
    await leaver.auth.logout()
    expect(await record(redis, name)).toMatchObject({ kind: 'e' })

    gate.open()
    // Settled: the returning process either ended or wrote its session back.
    await until(
      async () => stateOf(away) === 'loggedOut' || (await record(redis, name)).kind === 's',
      10_000,
    )
    expect((await record(redis, name)).kind).toBe('e')
    expect(stateOf(away)).toBe('loggedOut')
  }, 30_000)

  // Before the fix: it adopted the older record and presented a spent refresh token (review r2, P0-2).
  it('a process restarted with a stored session newer than the record keeps its own and presents no spent refresh token', async () => {
    // A process that refreshed during an outage persists the rotated session, and restarts
    // before Redis is back. The first record it meets — its own login, one rotation older —
    // holds a spent refresh token: it must not be taken as newer, neither delivered as LOGIN
    // nor adopted by the lock-time judge().
    const server = await tokenServer()
    const name = key('stored')
    const gate = await gateTo(redis)
    const storage = memorySession() // stands for a file/DB adapter surviving the restart
    const before = make(server, { url: gate.url, key: name }, { storage })
    await before.auth.ready
    before.auth.login(server.login())
    expect(await until(async () => (await record(redis, name)).version === 1)).toBe(true)

    // Time passes between the login and the refresh (the record ages in whole seconds, so
    // comparing obtainedAt needs more than one second to tell them apart).
    await new Promise((resolve) => setTimeout(resolve, 1_100))
    gate.cut()
    server.expireAccessTokens()
    expect(await status(before.auth, `${server.url}/api/data`)).toBe(200) // rotated alone
    before.auth.dispose()
    gate.open()

    // The restart: a new client on what the old one persisted (a copy, so no state of the
    // old client object carries over in this one Node process).
    const persisted = await storage.get()
    expect(persisted).not.toBeNull()
    const reopened = memorySession()
    if (persisted) await reopened.set(persisted)
    const after = make(server, { url: gate.url, key: name }, { storage: reopened })
    await after.auth.ready
    server.expireAccessTokens()
    // Two requests in a row, through both paths that could adopt the older session: the
    // recovery's take() (as LOGIN), and judge() inside the lock (as the "refresh", replayed
    // with its expired access token). Neither may present the spent refresh token.
    const results = [
      await status(after.auth, `${server.url}/api/data`),
      await status(after.auth, `${server.url}/api/data`),
    ]
    expect({ results, reuse: server.counters.reuseDetections }).toEqual({
      results: [200, 200],
      reuse: 0,
    })
  }, 30_000)
})

describe('stalls, locks without expiry, connections opened after dispose()', () => {
  // Before the fix: the session was never put back, and the next process spent the same refresh token (review r2, P1-1).
  it('after a stall (no disconnect) the process that refreshed alone puts its session back: the next process refreshes without reuse', async () => {
    // An outage declared by a command timeout, with the socket still up (CLIENT PAUSE, a
    // Sentinel failover pause, a slow network), ends without a 'ready' event. Until the
    // process that refreshed alone puts its session back, the record holds the spent refresh
    // token, and the next process to refresh would present it.
    const paused = await ownRedis()
    const server = await tokenServer()
    const name = key('stall')
    const options = { refreshTimeout: 500 }
    const a = make(server, { url: paused.url, key: name, lockTtl: 1_000 }, options)
    await a.auth.ready
    a.auth.login(server.login())
    expect(await until(async () => (await record(paused, name)).version === 1)).toBe(true)
    const b = make(server, { url: paused.url, key: name, lockTtl: 1_000 }, options)
    await b.auth.ready
    expect(tokenOf(b)).toBe(tokenOf(a))

    server.expireAccessTokens()
    await paused.command(['CLIENT', 'PAUSE', '1500', 'ALL'])
    expect(await status(a.auth, `${server.url}/api/data`)).toBe(200) // alone, after 500 ms
    expect(a.warnings.join('\n')).toContain(UNAVAILABLE)
    await paused.command(['PING']) // answered once the pause is over: Redis is back
    // With no command of its own to send, the process notices by asking (a PING a second):
    // its recovery puts its session back.
    expect(
      await until(async () => a.warnings.some((w) => w.includes('reachable again')), 5_000),
    ).toBe(true)
    expect(await until(async () => (await record(paused, name)).version === 2, 3_000)).toBe(true)

    const result = await status(b.auth, `${server.url}/api/data`)
    expect({ result, reuse: server.counters.reuseDetections }).toEqual({ result: 200, reuse: 0 })
  }, 30_000)

  // Before the fix: SET/EVAL/PTTL spun every 5 ms forever, refreshing nothing and warning nothing (review r2, P1-2).
  it('a `<key>:lock` without expiry (foreign key, PERSIST, restored dump): the refresh goes on alone with a warning naming the lock, and no busy loop', async () => {
    const server = await tokenServer()
    const name = key('lock')
    await redis.command(['SET', `${name}:lock`, 'left over, no TTL'])
    const a = make(
      server,
      { url: redis.url, key: name },
      { refreshTimeout: 500, retry: { retries: 1, baseDelay: 10, maxDelay: 10 } },
    )
    await a.auth.ready
    a.auth.login(server.login())
    server.expireAccessTokens()
    const result = await status(a.auth, `${server.url}/api/data`)

    const start = await commandCalls(redis, 'set')
    await new Promise((resolve) => setTimeout(resolve, 1_000)) // a rate, measured over 1 s
    const perSecond = (await commandCalls(redis, 'set')) - start

    // Expected: the refresh goes on (alone, as on any refusal) with one warning naming the
    // lock, and no busy loop against Redis once the client has given up.
    expect({ result, warned: a.warnings.some((w) => /lock/i.test(w)), perSecond }).toEqual({
      result: 200,
      warned: true,
      perSecond: expect.any(Number),
    })
    expect(perSecond).toBeLessThan(20)
  }, 30_000)

  // Before the fix: the driver-owned connections stayed open for good (review r2, P1-3).
  it.each(['url', 'client'] as const)(
    'dispose() before the connection is up closes the driver-owned connections once they open (%s)',
    async (mode) => {
      // node-redis: destroy() while connect() is in flight does not stop the connect; the
      // socket opens afterwards, and the driver must close it. Here dispose() comes right
      // after creating the clients (a SIGTERM during startup, a short script).
      const own = await ownRedis()
      const server = await tokenServer()
      const app = mode === 'client' ? await createClient({ url: own.url }).connect() : undefined
      if (app) afterTest(() => app.destroy())
      // Every connection but the one asking (the harness opens one per command).
      const count = async () =>
        String(await own.command(['CLIENT', 'LIST']))
          .split('\n')
          .filter((line) => line.trim() !== '' && !line.includes('cmd=client|list')).length
      const baseline = await count() // the app's own client, if any
      const { auth } = make(
        server,
        app ? { client: app, key: key('dispose') } : { url: own.url, key: key('dispose') },
      )
      auth.dispose()
      // A connection that comes up after dispose() must go away again: wait for any to appear
      // and then for the count to return to the baseline.
      await until(async () => (await count()) > baseline, 1_000)
      const back = await until(async () => (await count()) === baseline, 3_000)
      expect({ back, connections: await count(), baseline }).toMatchObject({ back: true })
    },
    20_000,
  )

  // Before the fix: the process did not exit by itself (review r2, P1-3b).
  it('a process that disposes its client right after creating it exits by itself', async () => {
    const own = await ownRedis()
    const script = `
      import { createAuthClient } from ${JSON.stringify(join(repo, 'dist/src/fetch.js'))}
      import { redisCoordinator } from ${JSON.stringify(join(repo, 'dist/src/redis.js'))}
      const auth = createAuthClient({
        refresh: async () => ({ accessToken: 'x' }), attachTo: ['http://127.0.0.1:9'],
        onWarning: () => {},
        coordinator: redisCoordinator({ url: ${JSON.stringify(own.url)}, key: 'exit' }),
      })
      process.on('SIGTERM', () => auth.dispose()) // the README's shutdown line
      process.kill(process.pid, 'SIGTERM')        // arriving during startup
    `
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: 'ignore',
    })
    const exited = new Promise<string>((resolve) =>
      child.once('exit', (code, signal) => resolve(`exit ${code ?? signal}`)),
    )
    const stuck = new Promise<string>((resolve) =>
      setTimeout(() => resolve('still running'), 5_000),
    )
    const outcome = await Promise.race([exited, stuck])
    if (outcome === 'still running') child.kill('SIGKILL')
    expect(outcome).toBe('exit 0')
  }, 20_000)
})

describe('API, options, convergence', () => {
  // Before the fix: it needed a cast, the nested duplicate().on listeners being `(...args: any[]) => void` (review r2, P2-1).
  it('RedisClientLike accepts a node-redis 6 `createClient()` result without a cast', async () => {
    const project = await mkdtemp(join(tmpdir(), 'auth-machine-r2-types-'))
    afterTest(() => rm(project, { recursive: true, force: true }))
    await mkdir(join(project, 'node_modules'), { recursive: true })
    await writeFile(join(project, 'package.json'), '{ "type": "module", "private": true }')
    const links: [string, string][] = [
      ['auth-machine', repo],
      ['redis', join(repo, 'node_modules/redis')],
      ['@redis', join(repo, 'node_modules/@redis')],
      ['xstate', join(repo, 'node_modules/xstate')],
    ]
    for (const [name, target] of links) {
      await symlink(target, join(project, 'node_modules', name), 'junction')
    }
    const file = join(project, 'consumer.ts')
    await writeFile(
      file,
      `import { createClient } from 'redis'
import { createAuthClient } from 'auth-machine/fetch'
import { redisCoordinator } from 'auth-machine/redis'
const redis = createClient({ url: 'redis://127.0.0.1:6379' })
const connected = await createClient().connect()
// The README's client-credentials snippet: \`client: redis /* your node-redis client */\`
createAuthClient({
  refresh: async () => ({ access_token: 'a', expires_in: 60 }),
  coordinator: redisCoordinator({ client: redis, key: 'invoices-m2m' }),
})
redisCoordinator({ client: connected, key: 'k' })
redisCoordinator({ client: createClient({ RESP: 3 }), key: 'k' })
`,
    )
    const program = ts.createProgram({
      rootNames: [file],
      options: {
        target: ts.ScriptTarget.ES2022,
        module: ts.ModuleKind.NodeNext,
        moduleResolution: ts.ModuleResolutionKind.NodeNext,
        strict: true,
        noEmit: true,
        skipLibCheck: true,
        types: [],
      },
    })
    const errors = ts
      .getPreEmitDiagnostics(program)
      .map(
        (d) => `TS${d.code} ${ts.flattenDiagnosticMessageText(d.messageText, ' ').slice(0, 160)}`,
      )
    expect(errors).toEqual([])
  }, 60_000)

  // Before the fix: the driver connected the app's client behind its back, and the app's connect() threw (review r2, P2-2).
  it("the driver leaves the app's own client to the app: its `connect()` after `await auth.ready` succeeds", async () => {
    const server = await tokenServer()
    const app = createClient({ url: redis.url })
    afterTest(() => (app.isOpen ? app.destroy() : undefined))
    const { auth } = make(server, { client: app, key: key('app') })
    await auth.ready
    // What an app writes when it sets up Redis after the auth client (README snippet 2 order).
    await expect(app.connect().then(() => 'connected')).resolves.toBe('connected')
  })

  // Before the fix: both passed validation; with 1500.5 every process refreshed every expiry (reuse), with 7e9 the lock was renewed every 1 ms (review r2, P2-3).
  it.each([
    ['1500.5 (SET PX refuses a fraction)', 1500.5],
    ['7e9 (lockTtl / 3 overflows setInterval)', 7e9],
  ])(
    'lockTtl %s is rejected as INVALID_OPTIONS, or else coordinates: one refresh, no reuse, no renewal storm',
    async (_label, lockTtl) => {
      const server = await tokenServer()
      const name = key('ttl')
      let made: Made[]
      try {
        made = [0, 1].map(() => make(server, { url: redis.url, key: name, lockTtl }))
      } catch (error) {
        // Rejected up front as INVALID_OPTIONS.
        expect(error).toMatchObject({ code: 'INVALID_OPTIONS' })
        return
      }
      const [a, b] = made as [Made, Made]
      await Promise.all([a.auth.ready, b.auth.ready])
      a.auth.login(server.login())
      expect(await until(() => tokenOf(b) !== undefined)).toBe(true)
      const hold = server.hold('/auth/refresh')
      server.expireAccessTokens()
      const results = Promise.all([a, b].map((c) => status(c.auth, `${server.url}/api/data`)))
      await hold.untilWaiting(1)
      const start = await commandCalls(redis, 'eval')
      await new Promise((resolve) => setTimeout(resolve, 300))
      const renewals = (await commandCalls(redis, 'eval')) - start
      hold.release()
      expect(await results).toEqual([200, 200])
      expect(server.counters.refreshCalls).toBe(1)
      expect(server.counters.reuseDetections).toBe(0)
      expect(renewals).toBeLessThan(20) // a waiter's read or two, not a renewal per ms
    },
    30_000,
  )

  // Before the fix: `ready` waited two refreshTimeouts (subscription, then first read), and so did every request made at start (review r2, P2-4).
  it('with an unresponsive Redis (TCP accepted, no reply) `ready` waits at most one refreshTimeout', async () => {
    // The README bounds the start-up wait at 3 s (storage) and says a refresh waits "at most
    // refreshTimeout" for Redis.
    const sockets = new Set<Socket>()
    const hole: Server = createServer((socket) => {
      sockets.add(socket)
      socket.on('error', () => undefined)
    })
    await new Promise<void>((resolve) => hole.listen(0, '127.0.0.1', resolve))
    afterTest(
      () =>
        new Promise<void>((resolve) => {
          for (const socket of sockets) socket.destroy()
          hole.close(() => resolve())
        }),
    )
    const server = await tokenServer()
    const url = `redis://127.0.0.1:${(hole.address() as AddressInfo).port}`
    const refreshTimeout = 1_000
    const { auth } = make(server, { url, key: key('hole') }, { refreshTimeout })
    const started = Date.now()
    await auth.ready
    expect(Date.now() - started).toBeLessThan(refreshTimeout + 300)
  }, 20_000)

  // Before the fix: the writer kept the other login while the record held its own (review r2, P2-5).
  it("a login racing another process's login: both processes end on the session the record holds (pinned interleaving)", async () => {
    // The pinned interleaving: announce()'s read and a pull()'s read answer in the same tick
    // (one TCP chunk). Before the fix, announce passed its `overtaken()` check, take()
    // delivered the other login as LOGIN, then the write of this process's own login
    // succeeded and was believed: the record said "mine", the machine held "theirs", until its
    // next refresh. Unpinned, 4 processes logging in at once diverged in 8 of 10 runs.
    const server = await tokenServer()
    const name = key('race')
    const real = await createClient({ url: redis.url }).connect()
    afterTest(() => real.destroy())
    type Listener = Parameters<typeof real.on>[1]
    const replies: (() => void)[] = []
    const messages: (() => void)[] = []
    let holdReplies = false
    let holdMessages = false
    // The app's own client, with its replies and its subscriber's messages held by the test:
    // the same bytes, in the same order, only their timing pinned.
    const pinned: RedisClientLike = {
      get isOpen() {
        return real.isOpen
      },
      get isReady() {
        return real.isReady
      },
      connect: () => real.connect(),
      sendCommand: (args) =>
        (real.sendCommand([...args]) as Promise<unknown>).then((reply) =>
          holdReplies ? new Promise((resolve) => replies.push(() => resolve(reply))) : reply,
        ),
      subscribe: () => Promise.reject(new Error('not used on the main client')),
      duplicate: () => {
        const subscriber = real.duplicate()
        return Object.assign(Object.create(null), {
          get isOpen() {
            return subscriber.isOpen
          },
          get isReady() {
            return subscriber.isReady
          },
          connect: () => subscriber.connect(),
          sendCommand: (args: ReadonlyArray<string>) => subscriber.sendCommand([...args]),
          subscribe: (channel: string, listener: (message: string, channel: string) => void) =>
            subscriber.subscribe(channel, (message: string, from: string) => {
              if (holdMessages) messages.push(() => listener(message, from))
              else listener(message, from)
            }),
          duplicate: () => {
            throw new Error('not used')
          },
          on: (event: string, listener: (...args: never[]) => void) =>
            subscriber.on(event, listener as unknown as Listener),
          off: (event: string, listener: (...args: never[]) => void) =>
            subscriber.off(event, listener as unknown as Listener),
          destroy: () => subscriber.destroy(),
        }) as RedisClientLike
      },
      on: (event, listener) => real.on(event, listener as unknown as Listener),
      off: (event, listener) => real.off(event, listener as unknown as Listener),
    }
    const x = make(server, { client: pinned, key: name })
    const y = make(server, { url: redis.url, key: name })
    await Promise.all([x.auth.ready, y.auth.ready])

    holdMessages = true
    holdReplies = true
    y.auth.login(server.login()) // written as version 1; its message to x is held
    expect(await until(async () => (await record(redis, name)).version === 1)).toBe(true)
    expect(await until(() => messages.length === 1)).toBe(true)
    x.auth.login(server.login()) // x's announce reads version 1; the reply is held
    expect(await until(() => replies.length === 1)).toBe(true)
    for (const deliver of messages.splice(0)) deliver() // x's pull reads version 1 too
    // (A fix that serialises pull() behind announce() sends no second read yet: not required.)
    await until(() => replies.length === 2, 1_000)
    holdReplies = false
    for (const answer of replies.splice(0)) answer() // both replies in one tick, as one chunk

    const agreed = async () => {
      const { accessToken } = await record(redis, name)
      return tokenOf(x) === accessToken && tokenOf(y) === accessToken
    }
    await until(agreed)
    const { accessToken, version } = await record(redis, name)
    expect({ version, x: tokenOf(x) === accessToken, y: tokenOf(y) === accessToken }).toEqual({
      version: expect.any(Number),
      x: true,
      y: true,
    })
  }, 30_000)

  // Before the fix: it ignored the other sign-in on recovery and kept the old one (review r2, P2-6).
  it('a process that missed another sign-in (partitioned) adopts it on recovery', async () => {
    // The newer record is of ANOTHER sign-in, last written by a refresh. Before the fix, take()
    // delivered it with that recorded reason ('refresh', i.e. SESSION_SYNCED), which the
    // machine drops for a different sign-in: the process went on with the abandoned sign-in
    // until its next refresh (up to a token lifetime), while every other process moved on.
    const server = await tokenServer()
    const name = key('missed')
    const gate = await gateTo(redis)
    const a = make(server, { url: gate.url, key: name })
    const b = make(server, { url: redis.url, key: name })
    await Promise.all([a.auth.ready, b.auth.ready])
    a.auth.login(server.login('alice'))
    expect(await until(() => tokenOf(b) === tokenOf(a))).toBe(true)

    gate.cut()
    b.auth.login(server.login('bob'))
    expect(await until(async () => (await record(redis, name)).version === 2)).toBe(true)
    server.expireAccessTokens()
    expect(await status(b.auth, `${server.url}/api/data`)).toBe(200) // bob's session, refreshed
    const bob = tokenOf(b)
    expect((await record(redis, name)).accessToken).toBe(bob)

    gate.open()
    expect(await until(() => a.warnings.some((w) => w.includes('reachable again')), 10_000)).toBe(
      true,
    )
    await until(() => tokenOf(a) === bob)
    // Booleans, so a failure prints no token.
    expect({ adoptedBob: tokenOf(a) === bob, state: stateOf(a) }).toEqual({
      adoptedBob: true,
      state: 'authenticated',
    })
  }, 30_000)
})

describe('warnings that say what is wrong', () => {
  // Before the fix: it was reported as "Redis is unavailable (Error)" (review r2, P3-1).
  it('a wrong password is reported as an authentication failure, without the password', async () => {
    const own = await ownRedis()
    await own.command(['ACL', 'SETUSER', 'svc', 'on', '>right-password', '~*', '&*', '+@all'])
    const server = await tokenServer()
    const url = `redis://svc:wrong-password@127.0.0.1:${own.port}`
    const { auth, warnings } = make(server, { url, key: key('auth') }, { refreshTimeout: 500 })
    await auth.ready
    expect(warnings).toHaveLength(1)
    expect(warnings[0]).toMatch(/WRONGPASS|password|authenticat/i)
    expect(warnings[0]).not.toContain('wrong-password')
  }, 20_000)
})
