import { type ChildProcess, fork } from 'node:child_process'
import { type AddressInfo, connect, createServer, type Socket } from 'node:net'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { afterAll, afterEach, beforeAll, expect } from 'vitest'
import { refreshAt } from '../../scripts/refresh-at.mjs'
import {
  createTestAuthServer,
  type LoggedRequest,
  type TestAuthServer,
  type TestAuthServerOptions,
  type TokenSet,
} from '../../src/testing/index.js'
import { type RedisServer, startRedisServer } from './redisServer.js'

export { refreshAt }

/** The start of the warning of an outage, of its recovery, and of an unreadable record. */
export const UNAVAILABLE = 'Redis is unavailable'
export const REACHABLE = 'Redis is reachable again'
export const UNREADABLE = 'could not be read'
/** Secrets of the right length: the processes' one, and another one that cannot read it. */
export const SECRET = 'correct horse battery staple, 32+ bytes of it'
export const OTHER_SECRET = 'another secret entirely, also over 32 bytes'

/** A warning by what it says: `unavailable` (an outage), `reachable` (its recovery), or itself. */
export const kindOf = (warning: string) =>
  warning.startsWith(UNAVAILABLE)
    ? 'unavailable'
    : warning.startsWith(REACHABLE)
      ? 'reachable'
      : warning

/** Milliseconds since `start` (a `performance.now()`), rounded: for the printed figures. */
export const since = (start: number) => Math.round(performance.now() - start)

/** Every worker exits by itself with code 0 once its client is disposed. */
export async function expectCleanExits(workers: Worker[]): Promise<void> {
  expect(await exitAll(workers)).toEqual(workers.map(() => 0))
}

const WORKER = fileURLToPath(new URL('./worker.mjs', import.meta.url))
const EXIT_DEADLINE_MS = 10_000

/** What a worker process needs to build its client (passed in its environment). */
export interface WorkerConfig {
  serverUrl: string
  redisUrl: string
  key: string
  lockTtl?: number
  secret?: string
  refreshTimeout?: number
  /** Added to the worker's clock (ms), through the client's `clock` option. */
  clockOffset?: number
  /** A storage adapter: preloaded with a session, its first read held until released. */
  storage?: { preload?: Record<string, unknown> | null; gateFirstGet?: boolean }
  /** `retry.retries` of the worker's client. */
  retries?: number
}

/** A worker's view of its client: state names only, tokens as fingerprints. */
export interface StateReport {
  id: string
  pid: number
  /** Top-level state: `loggedOut`, `authenticated`, `refreshing` or `expired`. */
  state: string
  value: string
  hasSession: boolean
  /** A hash prefix of the access token, to compare tokens without printing them. */
  token: string | null
  /** Top-level states visited since start (or the last `resetHistory`), repeats folded. */
  history: string[]
}

export interface BurstReport extends StateReport {
  /** One per request: the HTTP status, or `error:<name>:<code>` if it rejected. */
  statuses: (number | string)[]
}

/** The IPC commands of worker.mjs: arguments and reply of each. */
interface Commands {
  burst: { args: { n: number; path: string }; reply: BurstReport }
  login: { args: { tokens: TokenSet }; reply: StateReport }
  logout: { args: Record<string, never>; reply: StateReport }
  state: { args: { resetHistory?: boolean }; reply: StateReport }
  waitState: { args: { state: string }; reply: StateReport }
  waitWarnings: { args: { pattern: string; count: number }; reply: string[] }
  warnings: { args: Record<string, never>; reply: string[] }
  session: {
    args: Record<string, never>
    reply: { accessToken: string; refreshToken: string | undefined } | null
  }
  exit: { args: Record<string, never>; reply: { exiting: true } }
  deliveries: { args: Record<string, never>; reply: string[] }
  waitDelivered: { args: { type: string; count: number }; reply: string[] }
  gateStorage: { args: Record<string, never>; reply: { gated: boolean } }
  waitStorageWaiting: { args: { count: number }; reply: { storageWaiting: number } }
  releaseStorage: { args: Record<string, never>; reply: { released: true } }
}

type Message =
  | { event: 'ready'; value: StateReport }
  | { id: number; ok: true; value: unknown }
  | { id: number; ok: false; error: string }

interface Pending {
  resolve(value: unknown): void
  reject(error: Error): void
}

/** A forked worker process and its request/response channel. */
export class Worker {
  readonly id: string
  readonly child: ChildProcess
  /** The worker's state once its client is `ready` (the shared session adopted, if any). */
  readonly ready: Promise<StateReport>
  /** Resolves with the exit code (or signal name) once the process is gone. */
  readonly exited: Promise<number | string>
  readonly #pending = new Map<number, Pending>()
  #nextId = 1
  #gone = false

  constructor(id: string, config: WorkerConfig) {
    this.id = id
    this.child = fork(WORKER, [], {
      env: { ...process.env, AUTH_WORKER_CONFIG: JSON.stringify({ ...config, id }) },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    })
    live.add(this)
    // A send racing a kill reports through 'error'; the send's callback rejects it already.
    this.child.on('error', () => undefined)
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        this.#gone = true
        live.delete(this)
        const error = new Error(`worker ${id} exited (${code ?? signal}) before replying`)
        for (const pending of this.#pending.values()) pending.reject(error)
        this.#pending.clear()
        resolve(code ?? signal ?? 'unknown')
      })
    })
    this.ready = new Promise((resolve, reject) => {
      this.child.on('message', (message: Message) => {
        if ('event' in message) return resolve(message.value)
        const pending = this.#pending.get(message.id)
        this.#pending.delete(message.id)
        if (message.ok) pending?.resolve(message.value)
        else pending?.reject(new Error(`worker ${id}: ${message.error}`))
      })
      void this.exited.then((code) => reject(new Error(`worker ${id} exited (${code}) at start`)))
    })
    // A worker killed on purpose must not surface as an unhandled rejection.
    this.ready.catch(() => undefined)
  }

  /** Sends one command and resolves with its reply; rejects if the process dies first. */
  send<C extends keyof Commands>(cmd: C, args: Commands[C]['args']): Promise<Commands[C]['reply']> {
    if (this.#gone) return Promise.reject(new Error(`worker ${this.id} is gone`))
    const id = this.#nextId++
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (value: unknown) => void, reject })
      this.child.send({ id, cmd, args }, (error) => {
        if (!error) return
        this.#pending.delete(id)
        reject(error)
      })
    })
  }

  burst(n: number, path = '/api/data'): Promise<BurstReport> {
    return this.send('burst', { n, path })
  }

  state(resetHistory = false): Promise<StateReport> {
    return this.send('state', { resetHistory })
  }

  /** SIGSTOP, as a long GC pause: the process runs nothing until {@link resume}. */
  pause(): void {
    if (!this.#gone) this.child.kill('SIGSTOP')
  }

  /** SIGCONT. */
  resume(): void {
    if (!this.#gone) this.child.kill('SIGCONT')
  }

  /** SIGKILL, as a crash: no cleanup runs in the process. Resolves once it is gone. */
  async kill(): Promise<void> {
    if (!this.#gone) this.child.kill('SIGKILL')
    await this.exited
  }

  /**
   * Asks the worker to dispose its client and exit by itself; resolves with its exit code.
   * A process that outlives its IPC channel has something left open (a socket, a timer):
   * that fails here by name instead of as a test timeout.
   */
  async exit(): Promise<number | string> {
    await this.send('exit', {})
    let timer: NodeJS.Timeout | undefined
    const stuck = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`worker ${this.id} did not exit after dispose()`)),
        EXIT_DEADLINE_MS,
      )
    })
    try {
      return await Promise.race([this.exited, stuck])
    } finally {
      clearTimeout(timer)
    }
  }
}

const live = new Set<Worker>()

/** Starts `count` workers at once (Node startups overlap) and waits until each is ready. */
export async function startWorkers(
  count: number,
  config: WorkerConfig,
  firstId = 1,
): Promise<Worker[]> {
  const workers = Array.from({ length: count }, (_, i) => new Worker(`w${firstId + i}`, config))
  await Promise.all(workers.map((worker) => worker.ready))
  return workers
}

/** Kills every worker still running: after each test, whatever happened in it. */
export async function killAllWorkers(): Promise<void> {
  await Promise.all([...live].map((worker) => worker.kill()))
}

/** Every worker exits by itself after disposing its client; returns their exit codes. */
export function exitAll(workers: Worker[]): Promise<(number | string)[]> {
  return Promise.all(workers.map((worker) => worker.exit()))
}

/** `count` workers as a tuple when `count` is a literal (`[Worker, Worker]` for 2), else an array. */
export type Workers<N extends number, Started extends Worker[] = []> = number extends N
  ? Worker[]
  : Started['length'] extends N
    ? Started
    : Workers<N, [...Started, Worker]>

/**
 * A session shared by `count` processes: the first logs in (as `user`, if given) with tokens
 * fresh from the server, the others start once the record is in Redis and adopt it through
 * `auth.ready`, with `others` over `config` (another Redis url, a clock offset…).
 */
export async function sharedSession<N extends number>(
  server: TestAuthServer,
  redis: RedisServer,
  count: N,
  config: WorkerConfig,
  { user, others = {} }: { user?: string; others?: Partial<WorkerConfig> } = {},
): Promise<{ workers: Workers<N>; tokens: TokenSet }> {
  const [first] = await startWorkers(1, config)
  if (!first) throw new Error('no worker')
  const tokens = server.login(user)
  await first.send('login', { tokens })
  // The login is announced asynchronously: a process started before it is written would
  // begin signed out, and this test is about adopting at start.
  await untilRedis(redis, ['HGET', `${config.key}:record`, 'v'], (v) => v !== null)
  const rest = await startWorkers(count - 1, { ...config, ...others }, 2)
  return { workers: [first, ...rest] as Workers<N>, tokens }
}

const POLL_MS = 10

/**
 * Resolves once a Redis command's reply satisfies `met`. Polled: the harness speaks one
 * command per connection, and this is a check of a condition, not a sleep standing in for one.
 */
export async function untilRedis(
  redis: RedisServer,
  args: string[],
  met: (reply: unknown) => boolean,
  timeoutMs = 15_000,
): Promise<unknown> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const reply = await redis.command(args).catch(() => undefined)
    if (reply !== undefined && met(reply)) return reply
    if (Date.now() > deadline) throw new Error(`Redis ${args.join(' ')}: condition not met`)
    await new Promise((resolve) => setTimeout(resolve, POLL_MS))
  }
}

/** The refresh calls the server received, oldest first: which worker sent each. */
export function refreshSenders(server: TestAuthServer): string[] {
  return server.requests
    .filter((request) => request.path === '/auth/refresh')
    .map((request) => new URLSearchParams(request.query).get('worker') ?? '?')
}

/** The refresh token a logged refresh call presented (from its JSON body). */
export function presentedRefreshToken(request: LoggedRequest): string | undefined {
  const body: unknown = JSON.parse(request.body ?? 'null')
  if (typeof body !== 'object' || body === null || !('refreshToken' in body)) return undefined
  return typeof body.refreshToken === 'string' ? body.refreshToken : undefined
}

/** The bearer token a logged request carried, if any. */
export function bearer(request: LoggedRequest): string | undefined {
  return request.authorization?.match(/^Bearer (\S+)$/)?.[1]
}

/** Statuses of every burst that are not 200, with their worker: `[]` when all succeeded. */
export function failures(reports: BurstReport[]): string[] {
  return reports.flatMap((report) =>
    report.statuses.filter((status) => status !== 200).map((status) => `${report.id}:${status}`),
  )
}

/** Every burst at once: each process sends `n` concurrent protected requests. */
export function burstAll(workers: Worker[], n: number, path = '/api/data'): Promise<BurstReport[]> {
  return Promise.all(workers.map((worker) => worker.burst(n, path)))
}

/** The forms a token could take in Redis if it were stored unsealed. */
export function encodings(token: string): string[] {
  const forms = [
    token,
    Buffer.from(token, 'utf8').toString('base64'),
    Buffer.from(token, 'utf8').toString('base64url'),
    Buffer.from(token, 'utf8').toString('hex'),
  ]
  // A JWT's claims and signature are each unique to it; its header is the same in every
  // token of the server (and in other tests' unsealed records), so it proves nothing.
  for (const segment of token.split('.').slice(1)) if (segment.length >= 16) forms.push(segment)
  // A base64url token stored as the bytes it encodes: raw, or re-encoded as base64 or hex.
  if (/^[A-Za-z0-9_-]+$/.test(token)) {
    const bytes = Buffer.from(token, 'base64url')
    forms.push(bytes.toString('base64'), bytes.toString('hex'), bytes.toString('latin1'))
  }
  return forms
}

const BASE64_RUN = /[A-Za-z0-9+/_-]{16,}={0,2}/g
const HEX_RUN = /(?:[0-9a-fA-F]{2}){8,}/g

/**
 * A stored value and what its encoded runs decode to. Base64 of a record that contains a
 * token does not contain the token's own base64 (the alignment differs): it must be decoded.
 */
function readings(value: string): string[] {
  const decoded = [value]
  for (const run of value.match(BASE64_RUN) ?? []) {
    for (const alphabet of ['base64', 'base64url'] as const) {
      const bytes = Buffer.from(run, alphabet)
      decoded.push(bytes.toString('utf8'), bytes.toString('latin1'))
    }
  }
  for (const run of value.match(HEX_RUN) ?? []) {
    const bytes = Buffer.from(run, 'hex')
    decoded.push(bytes.toString('utf8'), bytes.toString('latin1'))
  }
  return decoded
}

/** Every value stored in Redis, as strings, by key: strings, hashes, lists, sets, zsets. */
export async function dumpRedis(redis: RedisServer): Promise<Map<string, string[]>> {
  // One script, so one snapshot: a key listed and then gone (a lock released meanwhile) is
  // never read half-way, and none appears between the listing and the reads.
  const reply = (await redis.command(['EVAL', DUMP, '0'])) as unknown[]
  const dump = new Map<string, string[]>()
  for (let i = 0; i < reply.length; i += 2) {
    const key = String(reply[i])
    const values = reply[i + 1]
    dump.set(key, [key, ...(Array.isArray(values) ? values : [values]).map(String)])
  }
  return dump
}

/** Every key and its contents, whatever its type, as `key, [values]` pairs. */
const DUMP = `
local out = {}
for _, key in ipairs(redis.call('KEYS', '*')) do
  local kind = redis.call('TYPE', key)['ok']
  local values
  if kind == 'string' then values = { redis.call('GET', key) }
  elseif kind == 'hash' then values = redis.call('HGETALL', key)
  elseif kind == 'list' then values = redis.call('LRANGE', key, 0, -1)
  elseif kind == 'set' then values = redis.call('SMEMBERS', key)
  elseif kind == 'zset' then values = redis.call('ZRANGE', key, 0, -1, 'WITHSCORES')
  else return redis.error_reply('unexpected Redis type ' .. kind .. ' for ' .. key) end
  table.insert(out, key)
  table.insert(out, values)
end
return out
`

/** Which named tokens appear, in any of their encodings, in any of `values` (decoded too). */
export function leaks(values: string[], tokens: Record<string, string>): string[] {
  const texts = values.flatMap(readings)
  return Object.entries(tokens)
    .filter(([, token]) => encodings(token).some((form) => texts.some((t) => t.includes(form))))
    .map(([name]) => name)
}

/**
 * A TCP relay in front of a redis-server that the test can cut: a network partition between
 * the processes that connect through it and Redis, while Redis itself keeps running (and keeps
 * its data). Each process given its own gate can be let back in on its own, which orders
 * recoveries: what a process does on recovery happens before the next gate opens.
 */
export interface Gate {
  /** `redis://127.0.0.1:<port>` of the relay: what a process is given as its Redis url. */
  readonly url: string
  /** Drops every connection through the gate and turns new ones away until {@link open}. */
  cut(): void
  /** Lets connections through again. */
  open(): void
  /** Connections relayed right now. */
  connections(): number
  /** Drops everything and stops listening. */
  close(): Promise<void>
  /** Holds every byte sent towards Redis (replies still flow back) until {@link flowUpstream}. */
  stallUpstream(): void
  flowUpstream(): void
  /** Bytes held by {@link stallUpstream} right now. */
  heldUpstream(): number
  /** Resolves once more than `bytes` (default 0) are held. */
  untilHeld(bytes?: number): Promise<void>
}

export async function startGate(target: { port: number }): Promise<Gate> {
  const pairs = new Set<{ inner: Socket; outer: Socket }>()
  let up = true
  let stalled = false
  const held: { outer: Socket; chunk: Buffer }[] = []
  const onHeld = new Set<() => void>()
  const server = createServer((inner) => {
    if (!up) {
      inner.destroy()
      return
    }
    const outer = connect({ host: '127.0.0.1', port: target.port })
    const pair = { inner, outer }
    pairs.add(pair)
    const drop = () => {
      pairs.delete(pair)
      inner.destroy()
      outer.destroy()
    }
    inner.on('error', drop).on('close', drop)
    outer.on('error', drop).on('close', drop)
    inner.on('data', (chunk: Buffer) => {
      if (stalled) {
        held.push({ outer, chunk })
        for (const wake of [...onHeld]) wake()
      } else outer.write(chunk)
    })
    outer.pipe(inner)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  const dropAll = () => {
    for (const { inner, outer } of pairs) {
      inner.destroy()
      outer.destroy()
    }
    pairs.clear()
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    cut() {
      up = false
      dropAll()
    },
    open() {
      up = true
    },
    connections: () => pairs.size,
    stallUpstream() {
      stalled = true
    },
    flowUpstream() {
      stalled = false
      for (const { outer, chunk } of held.splice(0)) if (!outer.destroyed) outer.write(chunk)
    },
    heldUpstream: () => held.reduce((n, { chunk }) => n + chunk.length, 0),
    untilHeld: (bytes = 0) =>
      new Promise<void>((resolve) => {
        const count = () => held.reduce((n, { chunk }) => n + chunk.length, 0)
        if (count() > bytes) return resolve()
        const wake = () => {
          if (count() <= bytes) return
          onHeld.delete(wake)
          resolve()
        }
        onHeld.add(wake)
      }),
    close() {
      up = false
      dropAll()
      return new Promise((resolve) => server.close(() => resolve()))
    },
  }
}

/** The pid of a harness redis-server (from INFO), to SIGSTOP / SIGCONT it. */
export async function redisPid(redis: RedisServer): Promise<number> {
  const info = String(await redis.command(['INFO', 'server']))
  const pid = Number(/process_id:(\d+)/.exec(info)?.[1])
  if (!Number.isInteger(pid)) throw new Error('no process_id in INFO')
  return pid
}

/** How many times Redis ran `command` (`set`, `eval`…) since it started, from INFO commandstats. */
export async function commandCalls(redis: RedisServer, command: string): Promise<number> {
  const stats = String(await redis.command(['INFO', 'commandstats']))
  return Number(new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(stats)?.[1] ?? 0)
}

/** What a test made that outlives it unless undone: undone after it by {@link cleanUpTest}. */
const undo: (() => unknown)[] = []

/** Registers `cleanup` to run after the current test (the last registered runs first). */
export function afterTest(cleanup: () => unknown): void {
  undo.push(cleanup)
}

/**
 * After each test: kills the workers still running, then undoes what the test registered,
 * newest first (a Redis process resumed before it is stopped, a client before its server).
 */
export async function cleanUpTest(): Promise<void> {
  await killAllWorkers()
  for (const cleanup of undo.splice(0).reverse()) await cleanup()
}

/**
 * The calling test file's redis-server: started before its tests, stopped after them, with
 * {@link cleanUpTest} after each test. Its members answer once the file's `beforeAll` ran.
 * Hooks the file registers after this call run before these after each test (vitest runs
 * after-hooks last-registered first).
 */
export function redisServerForFile(): RedisServer {
  let server: RedisServer | undefined
  beforeAll(async () => {
    server = await startRedisServer()
  })
  afterEach(cleanUpTest)
  afterAll(async () => {
    await server?.stop()
  })
  const started = (): RedisServer => {
    if (!server) throw new Error('the redis-server of this file has not started (beforeAll)')
    return server
  }
  return {
    get port() {
      return started().port
    },
    get url() {
      return started().url
    },
    kill: () => started().kill(),
    restart: () => started().restart(),
    command: (args) => started().command(args),
    stop: () => started().stop(),
  }
}

/** A token server, closed after the test. */
export async function tokenServer(options: TestAuthServerOptions = {}): Promise<TestAuthServer> {
  const server = await createTestAuthServer(options)
  afterTest(() => server.close())
  return server
}

/** A redis-server of the test's own (to stall, kill or restart), stopped after it. */
export async function ownRedis(): Promise<RedisServer> {
  const server = await startRedisServer()
  afterTest(() => server.stop())
  return server
}

/** A {@link Gate} in front of `target`, closed after the test. */
export async function gateTo(target: { port: number }): Promise<Gate> {
  const gate = await startGate(target)
  afterTest(() => gate.close())
  return gate
}

let keys = 0

/** A key of its own for each call: no record, lock or channel is shared between tests. */
export function uniqueKey(prefix = 'session'): string {
  keys += 1
  return `${prefix}-${keys}`
}

/** A worker's config for a client of `server` on the Redis at `on`, under a key of its own. */
export function configFor(
  server: TestAuthServer,
  on: { url: string },
  extra: Partial<WorkerConfig> = {},
): WorkerConfig {
  return { serverUrl: server.url, redisUrl: on.url, key: uniqueKey(), ...extra }
}
