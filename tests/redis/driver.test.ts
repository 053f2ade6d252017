import { createHash } from 'node:crypto'
import { type AddressInfo, createServer } from 'node:net'
import { performance } from 'node:perf_hooks'
import { createClient } from 'redis'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import {
  type AuthClient,
  AuthError,
  createAuthClient,
  type TokenResponse,
} from '../../src/fetch.js'
import {
  type RedisClientLike,
  type RedisCoordinatorOptions,
  redisCoordinator,
} from '../../src/redis.js'
import type { TestAuthServer, TokenSet } from '../../src/testing/index.js'
import type { RedisServer } from './redisServer.js'
import {
  bearer,
  kindOf,
  leaks,
  OTHER_SECRET,
  ownRedis,
  REACHABLE,
  redisServerForFile,
  SECRET,
  tokenServer,
  UNAVAILABLE,
  UNREADABLE,
  uniqueKey,
  untilRedis,
} from './support.js'

// The Redis driver in one process: several clients in the test process, each with its own
// Redis connection, against a real redis-server and a real token server. What the
// multi-process tests (processes.test.ts) do not cover: options, connection ownership,
// Redis absent at start, unreadable records, fencing, and what pub/sub and warnings carry.

const redis = redisServerForFile()
const clients: AuthClient[] = []

/** Every token any server of this file handed out, by a name: for the leak scans. */
const issued = new Map<string, string>()
/** Every warning any client of this file reported, and every error message a test saw. */
const allWarnings: string[] = []
const errorMessages: string[] = []
/** Unhandled rejections while this file runs: none may come from the driver. */
const rejections: unknown[] = []
const onRejection = (reason: unknown) => rejections.push(reason)

beforeAll(() => {
  process.on('unhandledRejection', onRejection)
})

// Runs before the file's cleanup (registered later): clients go before their servers.
afterEach(() => {
  for (const client of clients.splice(0)) client.dispose()
})

afterAll(() => {
  process.off('unhandledRejection', onRejection)
})

function note(tokens: Partial<Record<'accessToken' | 'refreshToken', string | undefined>>) {
  for (const token of [tokens.accessToken, tokens.refreshToken]) {
    if (token) issued.set(`token${issued.size + 1}`, token)
  }
}

/** A login's tokens, straight from the server, remembered for the leak scans. */
function signIn(server: TestAuthServer): TokenSet {
  const tokens = server.login()
  note(tokens)
  return tokens
}

/** A short, stable name for a token: assertions compare these, so failures print no token. */
const fingerprint = (token: string | null | undefined) =>
  token ? createHash('sha256').update(token).digest('hex').slice(0, 12) : null

interface Options extends Partial<RedisCoordinatorOptions> {
  key: string
  refreshTimeout?: number
  /** Which refresh endpoint: `/auth/refresh` (JSON) or `/oauth/token` (a form, RFC 6749). */
  route?: 'auth' | 'oauth'
  /** Whether the refresh function passes `signal` to its call, as the docs ask. Default true. */
  passSignal?: boolean
}

interface InProcess {
  auth: AuthClient
  warnings: string[]
  /** Access tokens this client's own refresh calls obtained, oldest first. */
  refreshed: string[]
  /** Refresh tokens they obtained (none when the server does not rotate). */
  rotated: string[]
  /** How each of its refresh calls ended: `ok`, or the error's name. */
  outcomes: string[]
  /** Resolves once `count` warnings containing `text` were reported; event-driven. */
  untilWarning(text: string, count?: number): Promise<void>
}

/** A client of the test process with its own coordinator (its own Redis connection). */
function inProcess(server: TestAuthServer, options: Options): InProcess {
  const { route = 'auth', refreshTimeout, passSignal = true, ...coordinator } = options
  const warnings: string[] = []
  const refreshed: string[] = []
  const rotated: string[] = []
  const outcomes: string[] = []
  const call = async (session: { refreshToken?: string }, given: AbortSignal) => {
    const signal = passSignal ? given : undefined
    const response =
      route === 'auth'
        ? await fetch(`${server.url}/auth/refresh`, {
            method: 'POST',
            signal,
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ refreshToken: session.refreshToken }),
          })
        : await fetch(`${server.url}/oauth/token`, {
            method: 'POST',
            signal,
            body: new URLSearchParams({
              grant_type: 'refresh_token',
              refresh_token: session.refreshToken ?? '',
              client_id: 'driver-test',
            }),
          })
    if (!response.ok) {
      throw Object.assign(new Error(`refresh failed: ${response.status}`), {
        status: response.status,
      })
    }
    const body = (await response.json()) as Record<string, string | undefined>
    const accessToken = body.accessToken ?? body.access_token
    const refreshToken = body.refreshToken ?? body.refresh_token
    note({ accessToken, refreshToken })
    if (accessToken) refreshed.push(accessToken)
    if (refreshToken) rotated.push(refreshToken)
    return body as unknown as TokenResponse
  }
  const auth = createAuthClient({
    refresh: (session, { signal }) =>
      call(session, signal).then(
        (tokens) => {
          outcomes.push('ok')
          return tokens
        },
        (error: unknown) => {
          outcomes.push((error as Error)?.name ?? typeof error)
          errorMessages.push(String((error as Error)?.message ?? error))
          throw error
        },
      ),
    attachTo: [server.url],
    coordinator: redisCoordinator({
      ...(coordinator.client ? {} : { url: redis.url }),
      ...coordinator,
    } as RedisCoordinatorOptions),
    ...(refreshTimeout === undefined ? {} : { refreshTimeout }),
    onWarning: (message) => {
      warnings.push(message)
      allWarnings.push(message)
      for (const watch of [...watchers]) watch()
    },
  })
  const watchers = new Set<() => void>()
  const untilWarning = (text: string, count = 1) =>
    new Promise<void>((resolve) => {
      const watch = () => {
        if (warnings.filter((w) => w.includes(text)).length < count) return
        watchers.delete(watch)
        resolve()
      }
      watchers.add(watch)
      watch()
    })
  clients.push(auth)
  return { auth, warnings, refreshed, rotated, outcomes, untilWarning }
}

/** Resolves once the client's top-level state is `state`; event-driven, never polled. */
function untilState(auth: AuthClient, state: string): Promise<void> {
  const top = () => {
    const { value } = auth.actor.getSnapshot()
    return typeof value === 'string' ? value : Object.keys(value)[0]
  }
  return new Promise((resolve) => {
    if (top() === state) return resolve()
    const subscription = auth.actor.subscribe(() => {
      if (top() !== state) return
      subscription.unsubscribe()
      resolve()
    })
  })
}

/** The record's version once it is `version`: a login or refresh has been written. */
const untilVersion = (key: string, version: number, on: RedisServer = redis) =>
  untilRedis(on, ['HGET', `${key}:record`, 'v'], (v) => v === String(version))

async function status(auth: AuthClient, url: string): Promise<number> {
  const response = await auth.fetch(url)
  await response.arrayBuffer()
  return response.status
}

/** How many connections the redis-server has, the harness's own (one per command) included. */
/** The lines of a `CLIENT LIST` reply: one per connection. */
const linesOf = (list: unknown) =>
  String(list)
    .split('\n')
    .filter((line) => line.trim() !== '').length

async function connections(on: RedisServer): Promise<number> {
  return linesOf(await on.command(['CLIENT', 'LIST']))
}

const untilConnections = (on: RedisServer, count: number) =>
  untilRedis(on, ['CLIENT', 'LIST'], (list) => linesOf(list) === count)

/** The code of what `make` throws, its message kept for the leak scan. */
function thrown(make: () => unknown): { name: string; code: unknown } | 'no error' {
  try {
    make()
  } catch (error) {
    const { name, message, code } = error as AuthError
    errorMessages.push(message)
    return { name: error instanceof AuthError ? 'AuthError' : name, code }
  }
  return 'no error'
}

/** A port nothing listens on: taken from the OS, then closed. */
async function closedPort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

const INVALID = { name: 'AuthError', code: 'INVALID_OPTIONS' }

describe('options', () => {
  const url = 'redis://127.0.0.1:1'
  // Never connected: validation happens before anything is opened.
  const client = createClient({ url })

  it.each([
    ['no key', { url }],
    ['an empty key', { url, key: '' }],
    ['a key that is not a string', { url, key: 42 }],
    ['neither url nor client', { key: 'k' }],
    ['both url and client', { key: 'k', url, client }],
    ['a 31-byte string secret', { key: 'k', url, secret: 'x'.repeat(31) }],
    // 16 characters, 31 bytes: the length counted is the bytes'.
    ['a 31-byte multi-byte secret', { key: 'k', url, secret: `${'é'.repeat(15)}a` }],
    ['a 31-byte Uint8Array secret', { key: 'k', url, secret: new Uint8Array(31).fill(7) }],
    ['an empty secret', { key: 'k', url, secret: '' }],
    ['lockTtl 0', { key: 'k', url, lockTtl: 0 }],
    ['lockTtl NaN', { key: 'k', url, lockTtl: Number.NaN }],
    ['lockTtl negative', { key: 'k', url, lockTtl: -1 }],
    ['lockTtl Infinity', { key: 'k', url, lockTtl: Number.POSITIVE_INFINITY }],
    ['lockTtl under a second', { key: 'k', url, lockTtl: 999 }],
    // Before: accepted, then Redis refused every SET PX (no lock at all: reuse) or the renew
    // timer overflowed and renewed every millisecond.
    ['lockTtl fractional', { key: 'k', url, lockTtl: 1_500.5 }],
    ['lockTtl past the timers', { key: 'k', url, lockTtl: 7e9 }],
    ['lockTtl a string', { key: 'k', url, lockTtl: '1000' }],
  ])('%s: INVALID_OPTIONS', (_, options) => {
    expect(thrown(() => redisCoordinator(options as unknown as RedisCoordinatorOptions))).toEqual(
      INVALID,
    )
  })

  it.each([
    ['a 32-byte string secret', { secret: 'x'.repeat(32) }],
    ['a 32-byte multi-byte secret (16 characters)', { secret: 'é'.repeat(16) }],
    ['a 32-byte Uint8Array secret', { secret: new Uint8Array(32).fill(7) }],
    ['lockTtl 1000', { lockTtl: 1_000 }],
    ['a client instead of a url', { client }],
  ])('%s is accepted', (_, extra) => {
    const options = { key: 'k', ...('client' in extra ? {} : { url }), ...extra }
    expect(thrown(() => redisCoordinator(options as RedisCoordinatorOptions))).toBe('no error')
  })

  it("a short secret's error says its length, never the secret", () => {
    const secret = 'hunter2-is-not-a-secret'
    expect(thrown(() => redisCoordinator({ key: 'k', url, secret }))).toEqual(INVALID)
    const message = errorMessages.at(-1) ?? ''
    expect(message).toContain(`(got ${Buffer.byteLength(secret)})`)
    expect(message).not.toContain(secret)
  })

  it.each([true, false, {}])('`coordinator` with `crossTab: %o`: INVALID_OPTIONS', (crossTab) => {
    const coordinator = redisCoordinator({ key: 'k', url })
    const refresh = async () => ({ accessToken: 'never', expiresIn: 60 })
    expect(thrown(() => createAuthClient({ refresh, coordinator, crossTab }))).toEqual(INVALID)
  })
})

describe('connections', () => {
  it("an app's own connected client is used, and still open after dispose()", async () => {
    const own = await ownRedis()
    const server = await tokenServer()
    const key = uniqueKey('driver')
    const baseline = await connections(own)
    const app = createClient({ url: own.url })
    await app.connect()
    expect(await connections(own)).toBe(baseline + 1)

    const a = inProcess(server, { key, client: app })
    await a.auth.ready
    const tokens = signIn(server)
    a.auth.login(tokens)
    await untilVersion(key, 1, own)
    // Another client, on its own connection (its url), adopts what went through the app's.
    const b = inProcess(server, { key, url: own.url })
    await b.auth.ready
    expect(fingerprint(await b.auth.getAccessToken())).toBe(fingerprint(tokens.accessToken))
    // The app's client, the duplicate the driver subscribes with, and b's two.
    expect(await connections(own)).toBe(baseline + 4)

    server.expireAccessTokens()
    expect(await status(a.auth, `${server.url}/api/a`)).toBe(200)
    expect(await status(b.auth, `${server.url}/api/b`)).toBe(200)
    expect(server.counters).toMatchObject({ refreshCalls: 1, reuseDetections: 0 })
    expect(await own.command(['HGET', `${key}:record`, 'v'])).toBe('2')

    a.auth.dispose()
    // Only the driver's duplicate closes; the app's client stays open and usable.
    await untilConnections(own, baseline + 3)
    expect(app.isOpen).toBe(true)
    expect(await app.sendCommand(['PING'])).toBe('PONG')
    b.auth.dispose()
    await untilConnections(own, baseline + 1)
    expect(await app.sendCommand(['HGET', `${key}:record`, 'v'])).toBe('2')
    app.destroy()
    await untilConnections(own, baseline)
    expect(a.warnings).toEqual([])
    expect(b.warnings).toEqual([])
  })

  it("an app's own client not yet connected: the driver waits for the app to connect it, and leaves it open", async () => {
    const own = await ownRedis()
    const server = await tokenServer()
    const key = uniqueKey('driver')
    const baseline = await connections(own)
    const app = createClient({ url: own.url })
    expect(app.isOpen).toBe(false)

    const a = inProcess(server, { key, client: app })
    // The app connects its client when it likes (here after creating the auth client): the
    // driver never connects a client it does not own (the app's own connect() would throw).
    expect(app.isOpen).toBe(false)
    await app.connect()
    await a.auth.ready
    expect(app.isOpen).toBe(true)
    a.auth.login(signIn(server))
    await untilVersion(key, 1, own)
    server.expireAccessTokens()
    expect(await status(a.auth, `${server.url}/api/a`)).toBe(200)
    // The refresh went through the app's client: written under the lock, as version 2.
    await untilVersion(key, 2, own)
    expect(server.counters.refreshCalls).toBe(1)
    expect(await connections(own)).toBe(baseline + 2)

    a.auth.dispose()
    await untilConnections(own, baseline + 1)
    expect(app.isOpen).toBe(true)
    expect(await app.sendCommand(['PING'])).toBe('PONG')
    app.destroy()
    await untilConnections(own, baseline)
    expect(a.warnings).toEqual([])
  })

  it('a connection the driver opened (url) is closed by dispose()', async () => {
    const own = await ownRedis()
    const server = await tokenServer()
    const key = uniqueKey('driver')
    const baseline = await connections(own)
    const a = inProcess(server, { key, url: own.url })
    await a.auth.ready
    a.auth.login(signIn(server))
    await untilVersion(key, 1, own)
    // Its client and its subscriber.
    expect(await connections(own)).toBe(baseline + 2)
    a.auth.dispose()
    await untilConnections(own, baseline)
    expect(await connections(own)).toBe(baseline)
    expect(a.warnings).toEqual([])
  })
})

describe('Redis unreachable at start', () => {
  it('ready resolves within refreshTimeout, one warning, and the session works in-process', async () => {
    const REFRESH_TIMEOUT = 1_000
    const server = await tokenServer()
    const port = await closedPort()
    const before = rejections.length
    const started = performance.now()
    const a = inProcess(server, {
      key: uniqueKey('driver'),
      url: `redis://127.0.0.1:${port}`,
      refreshTimeout: REFRESH_TIMEOUT,
    })
    await a.auth.ready
    const readyMs = Math.round(performance.now() - started)
    expect(readyMs).toBeLessThan(REFRESH_TIMEOUT + 750)
    expect(a.auth.actor.getSnapshot().value).toBe('loggedOut')

    const tokens = signIn(server)
    a.auth.login(tokens)
    expect(fingerprint(await a.auth.getAccessToken())).toBe(fingerprint(tokens.accessToken))
    server.expireAccessTokens()
    const refreshStart = performance.now()
    expect(await status(a.auth, `${server.url}/api/a`)).toBe(200)
    const refreshMs = Math.round(performance.now() - refreshStart)
    expect(server.counters).toMatchObject({ refreshCalls: 1, refreshSuccesses: 1 })
    expect(fingerprint(await a.auth.getAccessToken())).toBe(fingerprint(a.refreshed[0]))
    expect(a.warnings).toHaveLength(1)
    expect(a.warnings[0]).toContain(UNAVAILABLE)

    a.auth.dispose()
    // Rejections are reported once the microtasks of a turn have run: let two turns pass.
    await new Promise((resolve) => setImmediate(resolve))
    await new Promise((resolve) => setImmediate(resolve))
    expect(rejections.slice(before)).toEqual([])
    console.log(
      `[redis] unreachable at start: ready after ${readyMs}ms (refreshTimeout ${REFRESH_TIMEOUT}), refresh in ${refreshMs}ms, warnings=${a.warnings.length}`,
    )
  })
})

describe('Redis lost while signed in', () => {
  it('killed and restarted: one warning each way, the session carries on, the record is put back', async () => {
    const own = await ownRedis()
    const server = await tokenServer()
    const key = uniqueKey('driver')
    const a = inProcess(server, { key, url: own.url })
    await a.auth.ready
    a.auth.login(signIn(server))
    await untilVersion(key, 1, own)

    await own.kill()
    await a.untilWarning(UNAVAILABLE)
    server.expireAccessTokens()
    expect(await status(a.auth, `${server.url}/api/a`)).toBe(200)
    expect(server.counters.refreshCalls).toBe(1)
    await own.restart()
    await a.untilWarning(REACHABLE)
    // Redis came back empty: the session this process holds is written back, as version 2.
    await untilVersion(key, 2, own)
    expect(a.warnings.map(kindOf)).toEqual(['unavailable', 'reachable'])
    const next = inProcess(server, { key, url: own.url })
    await next.auth.ready
    expect(fingerprint(await next.auth.getAccessToken())).toBe(fingerprint(a.refreshed[0]))
  })

  // Before: every read and write was refused (WRONGTYPE), each process refreshed alone with
  // the same refresh token, and rotation revoked the session (review r1, P1).
  it('the record key holding another type: one warning, the lock holder writes the record over it', async () => {
    const server = await tokenServer()
    const key = uniqueKey('driver')
    const a = inProcess(server, { key })
    await a.auth.ready
    a.auth.login(signIn(server))
    await untilVersion(key, 1)
    await redis.command(['DEL', `${key}:record`])
    await redis.command(['SET', `${key}:record`, 'not a hash'])
    const b = inProcess(server, { key })
    await b.auth.ready
    expect(b.auth.actor.getSnapshot().value).toBe('loggedOut')
    for (let round = 1; round <= 2; round++) {
      server.expireAccessTokens()
      expect(await status(a.auth, `${server.url}/api/a`), `round ${round}`).toBe(200)
      expect(server.counters.refreshCalls, `round ${round}`).toBe(round)
      expect(await redis.command(['EXISTS', `${key}:lock`]), `round ${round}`).toBe(0)
    }
    expect(await redis.command(['TYPE', `${key}:record`])).toBe('hash')
    expect(a.warnings).toEqual([expect.stringContaining(UNREADABLE)])
    expect(server.counters.reuseDetections).toBe(0)
  })
})

describe('an unreadable record is treated as absent', () => {
  const garbage = `\u0000\u00ff\ufffd not a record \r\n${'\u0007'.repeat(5)}{"a":`

  it.each([
    ['sealed with another secret', 'other-secret'],
    ['garbage where a sealed record belongs', 'garbage-sealed'],
    ['garbage where a plain record belongs', 'garbage-plain'],
    ['a kind the driver does not know', 'unknown-kind'],
  ] as const)('%s: one warning, no throw, the next login overwrites it', async (_, what) => {
    const server = await tokenServer()
    const key = uniqueKey('driver')
    const secret = what === 'garbage-plain' || what === 'unknown-kind' ? undefined : SECRET
    if (what === 'other-secret') {
      const other = inProcess(server, { key, secret: OTHER_SECRET })
      await other.auth.ready
      other.auth.login(signIn(server))
      await untilVersion(key, 1)
      other.auth.dispose()
    } else {
      const kind = what === 'unknown-kind' ? 'x' : 's'
      const data = what === 'unknown-kind' ? '{"a":"not-a-token"}' : garbage
      await redis.command(['HSET', `${key}:record`, 'v', '1', 'k', kind, 'd', data, 't', '0'])
    }

    const reader = inProcess(server, { key, ...(secret ? { secret } : {}) })
    await reader.auth.ready
    expect(reader.auth.actor.getSnapshot().value).toBe('loggedOut')
    expect(reader.warnings).toHaveLength(1)
    expect(reader.warnings[0]).toContain(UNREADABLE)

    const tokens = signIn(server)
    reader.auth.login(tokens)
    // Written over the unreadable version 1, and readable by the next process of this secret.
    await untilVersion(key, 2)
    const next = inProcess(server, { key, ...(secret ? { secret } : {}) })
    await next.auth.ready
    expect(fingerprint(await next.auth.getAccessToken())).toBe(fingerprint(tokens.accessToken))
    expect(next.warnings).toEqual([])
    // Still the one warning: the login read the unreadable record again, silently.
    expect(reader.warnings).toHaveLength(1)
  })

  // Before the fix such a version read as "no record" without a word, and the write script,
  // comparing it as a Lua number, refused every write below it: nothing was shared again.
  it.each(['99999999999999999999', '1.5', 'abc'])(
    'a version the driver never writes (v=%s): one warning, then overwritten and shared',
    async (v) => {
      const server = await tokenServer()
      const key = uniqueKey('driver')
      await redis.command(['HSET', `${key}:record`, 'v', v, 'k', 's', 'd', '{garbage', 't', '0'])
      const a = inProcess(server, { key })
      const b = inProcess(server, { key })
      await Promise.all([a.auth.ready, b.auth.ready])
      expect(a.warnings).toEqual([expect.stringContaining(UNREADABLE)])
      a.auth.login(signIn(server))
      await untilVersion(key, 1)
      await untilState(b.auth, 'authenticated')
      await a.auth.logout()
      await untilState(b.auth, 'loggedOut')
      expect(await redis.command(['HGET', `${key}:record`, 'k'])).toBe('e')
    },
  )
})

/** A write of the shared record as the driver sent it: no data, only what is not secret. */
interface Write {
  version: string
  kind: string
  /** The version written, or 0 when refused; `pending` until Redis answers. */
  reply: unknown
}

/**
 * An app's own node-redis client, wrapped to record the driver's writes of `recordKey` and
 * their replies: what the fencing test needs to see a refused write. Everything else is
 * passed through; the app (the test) closes it.
 */
async function spyClient(url: string, recordKey: string) {
  const real = createClient({ url })
  await real.connect()
  const writes: Write[] = []
  let muted = false
  const held: (() => void)[] = []
  const watchers = new Set<() => void>()
  const changed = () => {
    for (const watch of [...watchers]) watch()
  }
  const client: RedisClientLike = {
    get isOpen() {
      return real.isOpen
    },
    get isReady() {
      return real.isReady
    },
    connect: () => real.connect(),
    async sendCommand(args) {
      // The WRITE script: EVAL, script, 1, key, version, kind, data, …; READ has no arguments.
      const isWrite = args[0] === 'EVAL' && args[3] === recordKey && args.length > 4
      const write: Write = { version: args[4] ?? '', kind: args[5] ?? '', reply: 'pending' }
      if (isWrite) writes.push(write)
      try {
        const reply = await real.sendCommand([...args])
        write.reply = reply
        return reply
      } catch (error) {
        write.reply = `error:${(error as Error)?.name}`
        throw error
      } finally {
        if (isWrite) changed()
      }
    },
    subscribe: (channel, listener) => real.subscribe(channel, listener),
    duplicate: () => {
      // The driver's subscriber: its messages wait while the channel is muted.
      const subscriber = real.duplicate()
      return {
        get isOpen() {
          return subscriber.isOpen
        },
        get isReady() {
          return subscriber.isReady
        },
        connect: () => subscriber.connect(),
        sendCommand: (args) => subscriber.sendCommand([...args]),
        subscribe: (channel, listener) =>
          subscriber.subscribe(channel, (message, from) => {
            if (muted) held.push(() => listener(message, from))
            else listener(message, from)
          }),
        duplicate: () => {
          throw new Error('not used')
        },
        on: (event, listener) => subscriber.on(event, listener as never),
        off: (event, listener) => subscriber.off(event, listener as never),
        destroy: () => subscriber.destroy(),
      }
    },
    on: (event, listener) => real.on(event, listener as never),
    off: (event, listener) => real.off(event, listener as never),
    destroy: () => real.destroy(),
  }
  return {
    client,
    writes,
    /** Resolves once `met()` holds, re-checked on every write's reply. */
    until(met: () => boolean): Promise<void> {
      return new Promise((resolve) => {
        const watch = () => {
          if (!met()) return
          watchers.delete(watch)
          resolve()
        }
        watchers.add(watch)
        watch()
      })
    },
    /** Holds back the channel's messages to the driver (a slow subscriber) … */
    mute() {
      muted = true
    },
    /** … and hands them over, in order. */
    unmute() {
      muted = false
      for (const deliver of held.splice(0)) deliver()
    },
    destroy: () => real.destroy(),
  }
}

describe('fencing', () => {
  // The lock vanishes under a live holder (an operator's DEL, a FLUSHDB, a failover that lost
  // it) while its refresh call is held at the token server; another client takes the lock,
  // refreshes and writes version 2. Rotation off: the two holders present the same refresh
  // token, which a rotating server would count as reuse and answer by revoking the family,
  // ending the session everywhere. Fencing keeps the record consistent; it cannot unspend a
  // token. Without rotation both calls succeed, and only the record tells them apart.
  it.each([
    ['passes the signal: it takes the newer session and its call is abandoned', 'abandoned'],
    ['ignores the signal: its call completes, and its write is refused', 'refused'],
    ['hears the channel late: its write is refused, and it takes the newer record', 'late'],
  ] as const)('the first holder %s', async (_, variant) => {
    const server = await tokenServer({ rotateRefreshTokens: false })
    const key = uniqueKey('driver')
    const lockKey = `${key}:lock`
    const spy = await spyClient(redis.url, `${key}:record`)
    try {
      // a refreshes through /auth/refresh (held), b through /oauth/token (not held).
      const passSignal = variant !== 'refused'
      const a = inProcess(server, { key, client: spy.client, route: 'auth', passSignal })
      await a.auth.ready
      const tokens = signIn(server)
      a.auth.login(tokens)
      await untilVersion(key, 1)
      const b = inProcess(server, { key, route: 'oauth' })
      await b.auth.ready
      expect(fingerprint(await b.auth.getAccessToken())).toBe(fingerprint(tokens.accessToken))

      const hold = server.hold('/auth/refresh')
      server.expireAccessTokens()
      if (variant === 'late') spy.mute()
      let answered = false
      const aRequest = status(a.auth, `${server.url}/api/a`).finally(() => {
        answered = true
      })
      await hold.untilWaiting(1)
      // a holds the lock, its call on the wire; the lock vanishes.
      expect(await redis.command(['PTTL', lockKey])).toBeGreaterThan(0)
      expect(await redis.command(['DEL', lockKey])).toBe(1)

      // b takes the lock, refreshes and writes version 2.
      expect(await status(b.auth, `${server.url}/api/b`)).toBe(200)
      expect(await redis.command(['HGET', `${key}:record`, 'v'])).toBe('2')
      expect(b.refreshed).toHaveLength(1)
      const newer = fingerprint(b.refreshed[0])
      expect(fingerprint(await b.auth.getAccessToken())).toBe(newer)
      if (variant === 'late') {
        // Its call held and the channel muted, a has nothing to go on yet.
        expect(answered).toBe(false)
      } else {
        // a hears of version 2 on the channel and takes it while its own call is held: its
        // request is replayed with b's token before that call is answered.
        expect(await aRequest).toBe(200)
        expect(hold.waiting()).toBe(1)
        expect(fingerprint(await a.auth.getAccessToken())).toBe(newer)
      }

      hold.release()
      await server.waitFor((s) => s.counters.refreshSuccesses === 2)
      if (variant === 'abandoned') {
        // Aborted on a's side (the server still answered it); a never wrote a refresh.
        expect(a.outcomes).toEqual(['AbortError'])
        expect(a.refreshed).toEqual([])
        expect(spy.writes).toEqual([{ version: '1', kind: 's', reply: 1 }])
      } else {
        // Its call completes with a token of its own, which the driver writes (a refresh
        // token in the record may be spent) at version 2, over version 2: refused.
        if (variant === 'late') {
          // Nothing told a of b's write: the refusal is how it learns, and it returns the
          // record's session (read after the refusal) as its refresh.
          expect(await aRequest).toBe(200)
          spy.unmute()
        }
        await spy.until(() => spy.writes.length === 2 && spy.writes[1]?.reply !== 'pending')
        expect(a.outcomes).toEqual(['ok'])
        expect(a.refreshed).toHaveLength(1)
        expect(fingerprint(a.refreshed[0])).not.toBe(newer)
        expect(spy.writes).toEqual([
          { version: '1', kind: 's', reply: 1 },
          { version: '2', kind: 's', reply: 0 },
        ])
      }
      // Both hold b's session, and so does the record (unsealed here: its data is readable).
      expect(fingerprint(await a.auth.getAccessToken())).toBe(newer)
      expect(fingerprint(await b.auth.getAccessToken())).toBe(newer)
      expect(await redis.command(['HMGET', `${key}:record`, 'v', 'k'])).toEqual(['2', 's'])
      const data = JSON.parse(String(await redis.command(['HGET', `${key}:record`, 'd'])))
      expect(fingerprint(data.a)).toBe(newer)
      // a's request went out with the login token, then was replayed with b's.
      const sent = server.requests.filter((request) => request.path === '/api/a')
      expect(sent.map((request) => fingerprint(bearer(request)))).toEqual([
        fingerprint(tokens.accessToken),
        newer,
      ])
      // Two refresh calls, both honoured (same refresh token, no rotation), no reuse.
      expect(server.counters).toMatchObject({
        refreshCalls: 2,
        refreshSuccesses: 2,
        reuseDetections: 0,
      })
      expect(await redis.command(['EXISTS', lockKey])).toBe(0)
      expect([...a.warnings, ...b.warnings]).toEqual([])
    } finally {
      for (const client of clients.splice(0)) client.dispose()
      spy.destroy()
    }
  })
})

describe('pub/sub', () => {
  it('no message on the channel carries a token: login, refresh, logout', async () => {
    const server = await tokenServer()
    const key = uniqueKey('driver')
    const messages: string[] = []
    const watchers = new Set<() => void>()
    const listener = createClient({ url: redis.url })
    await listener.connect()
    try {
      await listener.subscribe(`${key}:events`, (message) => {
        messages.push(message)
        for (const watch of [...watchers]) watch()
      })
      const untilMessages = (met: () => boolean) =>
        new Promise<void>((resolve) => {
          const watch = () => {
            if (!met()) return
            watchers.delete(watch)
            resolve()
          }
          watchers.add(watch)
          watch()
        })
      const parsed = () => messages.map((m) => JSON.parse(m) as Record<string, unknown>)

      const a = inProcess(server, { key })
      const b = inProcess(server, { key })
      await Promise.all([a.auth.ready, b.auth.ready])
      const tokens = signIn(server)
      a.auth.login(tokens)
      await untilState(b.auth, 'authenticated')
      server.expireAccessTokens()
      expect(await status(a.auth, `${server.url}/api/a`)).toBe(200)
      expect(await status(b.auth, `${server.url}/api/b`)).toBe(200)
      expect(server.counters).toMatchObject({ refreshCalls: 1, reuseDetections: 0 })
      const refreshed = await a.auth.getAccessToken()
      await a.auth.logout()
      await untilState(b.auth, 'loggedOut')
      await untilMessages(() => parsed().some((m) => m.k === 'e'))

      const secrets = {
        loginAccess: tokens.accessToken,
        loginRefresh: tokens.refreshToken,
        refreshedAccess: refreshed ?? '',
        refreshedRefresh: a.rotated[0] ?? '',
      }
      expect(Object.values(secrets).every((token) => token.length >= 16)).toBe(true)
      expect(leaks(messages, secrets)).toEqual([])
      // The scan can fail: a message that carried a token would be caught.
      expect(leaks([JSON.stringify({ v: 1, d: secrets.refreshedRefresh })], secrets)).toEqual([
        'refreshedRefresh',
      ])
      // What was said: versions, kinds and the writer's id (not secret), and an unlock.
      const from = parsed()[0]?.from
      expect(from).toMatch(/^[0-9a-f]{16}$/)
      expect(parsed()).toEqual([
        { v: 1, k: 's', from },
        { v: 2, k: 's', from },
        { unlocked: true },
        { v: 3, k: 'e', from },
      ])
      console.log(`[redis] pub/sub: ${messages.length} messages, leaks=0`)
    } finally {
      listener.destroy()
    }
  })
})

describe('what the driver says', () => {
  // Last in the file: it scans what every test above collected.
  it('no warning or error message contains a token', () => {
    expect(issued.size).toBeGreaterThanOrEqual(20)
    expect(allWarnings.length).toBeGreaterThanOrEqual(8)
    expect(errorMessages.length).toBeGreaterThanOrEqual(15)
    const tokens = Object.fromEntries(issued)
    expect(leaks([...allWarnings, ...errorMessages], tokens)).toEqual([])
    const [name, token] = [...issued][0] ?? ['', '']
    expect(leaks([`a warning (${token})`], tokens)).toEqual([name])
    expect(rejections).toEqual([])
    console.log(
      `[redis] scanned ${allWarnings.length} warnings and ${errorMessages.length} error messages for ${issued.size} tokens: none found`,
    )
  })
})
