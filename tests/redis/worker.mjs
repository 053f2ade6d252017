// One application process of the Redis tests: a real, separate Node process (forked by
// support.ts) with its own auth client sharing the session through a real redis-server.
// It answers the test's requests over IPC: `{ id, cmd, args }` → `{ id, ok, value | error }`.
// Plain ESM against the built package, as an app would run it.
import { createHash } from 'node:crypto'
import { createAuthClient } from '../../dist/src/fetch.js'
import { redisCoordinator } from '../../dist/src/redis.js'
import { refreshAt } from '../../scripts/refresh-at.mjs'

const config = JSON.parse(process.env.AUTH_WORKER_CONFIG ?? '{}')
const { id, serverUrl, redisUrl, key, lockTtl, secret, refreshTimeout } = config
// Optional, for the protocol tests: a clock offset, a storage adapter whose reads can be
// held (a slow persistent store), a session already in that storage at start.
const { clockOffset, storage: storageConfig, retries } = config

/** Warnings the client reported, in order: the test asserts exact counts. */
const warnings = []
/** Listeners waiting for a warning or a state; re-checked on every change, never polled. */
const watchers = new Set()
const recheck = () => {
  for (const watcher of [...watchers]) watcher()
}

/** What the coordinator delivered to the client: 'login' | 'refresh' | 'ended', in order. */
const deliveries = []
/** Storage reads: the next ones wait while `gated`, each reported in `storageWaiting`. */
let stored = storageConfig?.preload ?? null
let gated = storageConfig?.gateFirstGet === true
let storageWaiting = 0
const storageReleases = []
const storage = storageConfig
  ? {
      get: async () => {
        if (gated) {
          storageWaiting += 1
          recheck()
          await new Promise((resolve) => storageReleases.push(resolve))
        }
        return stored
      },
      set: (session) => {
        stored = session
      },
      remove: () => {
        stored = null
      },
    }
  : undefined
const clock =
  clockOffset === undefined
    ? undefined
    : {
        now: () => Date.now() + clockOffset,
        setTimeout: (fn, ms) => setTimeout(fn, ms),
        clearTimeout: (handle) => clearTimeout(handle),
      }
const inner = redisCoordinator({
  url: redisUrl,
  key,
  ...(lockTtl === undefined ? {} : { lockTtl }),
  ...(secret === undefined ? {} : { secret }),
})
// The public Coordinator interface, wrapped only to count what it delivers.
const coordinator = {
  open(context) {
    return inner.open({
      ...context,
      deliver(message) {
        deliveries.push(message.type === 'ended' ? 'ended' : message.reason)
        recheck()
        context.deliver(message)
      },
    })
  },
}

const auth = createAuthClient({
  // The worker id goes in the query so the test can tell which process holds the refresh;
  // the token never.
  refresh: refreshAt(`${serverUrl}/auth/refresh?worker=${id}`),
  attachTo: [serverUrl],
  coordinator,
  ...(storage ? { storage } : {}),
  ...(clock ? { clock } : {}),
  ...(retries === undefined ? {} : { retry: { retries } }),
  ...(refreshTimeout === undefined ? {} : { refreshTimeout }),
  onWarning: (message) => {
    warnings.push(message)
    recheck()
  },
})

/** Top-level states visited, consecutive repeats folded: proves a state was never entered. */
let history = []
const topLevel = (value) => (typeof value === 'string' ? value : Object.keys(value)[0])
auth.actor.subscribe((snapshot) => {
  const state = topLevel(snapshot.value)
  if (history.at(-1) !== state) history.push(state)
  recheck()
})

// A short, stable name for a token: replies and failure messages never carry a token.
const fingerprint = (token) =>
  token ? createHash('sha256').update(token).digest('hex').slice(0, 12) : null

function report() {
  const snapshot = auth.actor.getSnapshot()
  const session = snapshot.context.session
  return {
    id,
    pid: process.pid,
    state: topLevel(snapshot.value),
    value: JSON.stringify(snapshot.value),
    hasSession: session !== null,
    token: fingerprint(session?.accessToken),
    history: [...history],
  }
}

/** Resolves once `met()` holds, re-checked on every state change and warning. */
function until(met) {
  return new Promise((resolve) => {
    const check = () => {
      if (!met()) return
      watchers.delete(check)
      resolve()
    }
    watchers.add(check)
    check()
  })
}

/** One protected request: its status, or the name of the error it rejected with. */
async function request(path) {
  try {
    const response = await auth.fetch(`${serverUrl}${path}`)
    await response.arrayBuffer()
    return response.status
  } catch (error) {
    return `error:${error?.name ?? typeof error}:${error?.code ?? ''}`
  }
}

const commands = {
  async burst({ n, path }) {
    const separator = path.includes('?') ? '&' : '?'
    const statuses = await Promise.all(
      Array.from({ length: n }, (_, i) => request(`${path}${separator}w=${id}&i=${i}`)),
    )
    return { statuses, ...report() }
  },
  login({ tokens }) {
    auth.login(tokens)
    return report()
  },
  async logout() {
    await auth.logout()
    return report()
  },
  state({ resetHistory } = {}) {
    const value = report()
    if (resetHistory) history = [value.state]
    return value
  },
  async waitState({ state }) {
    await until(() => topLevel(auth.actor.getSnapshot().value) === state)
    return report()
  },
  async waitWarnings({ pattern, count }) {
    const matching = () => warnings.filter((w) => new RegExp(pattern).test(w))
    await until(() => matching().length >= count)
    return [...warnings]
  },
  warnings() {
    return [...warnings]
  },
  // For the leak scan only: the test must know every token this process holds.
  session() {
    const { session } = auth.actor.getSnapshot().context
    return session ? { accessToken: session.accessToken, refreshToken: session.refreshToken } : null
  },
  deliveries() {
    return [...deliveries]
  },
  async waitDelivered({ type, count }) {
    await until(() => deliveries.filter((d) => d === type).length >= count)
    return [...deliveries]
  },
  /** The next storage reads wait until `releaseStorage`. */
  gateStorage() {
    gated = true
    return { gated }
  },
  async waitStorageWaiting({ count }) {
    await until(() => storageWaiting >= count)
    return { storageWaiting }
  },
  releaseStorage() {
    gated = false
    for (const release of storageReleases.splice(0)) release()
    return { released: true }
  },
  exit() {
    auth.dispose()
    return { exiting: true }
  },
}

process.on('message', async ({ id: requestId, cmd, args }) => {
  let reply
  try {
    const command = commands[cmd]
    if (!command) throw new Error(`unknown command ${cmd}`)
    reply = { id: requestId, ok: true, value: await command(args ?? {}) }
  } catch (error) {
    reply = { id: requestId, ok: false, error: String(error?.stack ?? error) }
  }
  process.send(reply, () => {
    // After `exit` nothing may keep the process alive: a driver that left a socket or a
    // timer open would make it outlive the IPC channel, and the test would see no exit.
    if (cmd === 'exit') process.disconnect()
  })
})

// A worker whose storage read is held is not ready yet, yet must take commands meanwhile
// (the handler above is installed already).
await auth.ready
process.send({ event: 'ready', value: report() })
