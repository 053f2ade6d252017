// Terminal demo of `auth-machine/redis`: a redis-server of its own, the real token server and
// 4 Node processes (this script, forked with `child`), each an `auth.fetch` client with
// `redisCoordinator` on one key. Process 1 logs in; the others start afterwards and adopt the
// shared session on `await auth.ready`. Then 5 times the server expires every access token
// and every process sends requests at once: each expiry must cost exactly 1 refresh call and
// no reuse detection. Last, a logout in one process signs out the others. Exits 0 only if all
// of that held. Uses only the published entry points, as an app would (plus the test harness
// that starts redis-server).
//
//   npm run demo:redis

import { fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { createTestAuthServer } from 'auth-machine/testing'
import { createRedisClient } from './redis-client.mjs'
import { startRedisServer } from './redis-server.mjs'

const PROCESSES = 4
const EXPIRIES = 5
const REQUESTS_PER_PROCESS = 5
const KEY = 'demo-redis'
/** The whole demo takes a few seconds; past this something hangs, and it fails instead. */
const DEADLINE_MS = 50_000
const REPLY_TIMEOUT_MS = 15_000
const SELF = fileURLToPath(import.meta.url)

const stateOf = (auth) => {
  const { value } = auth.actor.getSnapshot()
  return typeof value === 'string' ? value : Object.keys(value)[0]
}
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

// ---------------------------------------------------------------- a child process

/** One process of the service: answers the parent's requests over IPC, by `id`. */
async function child(serverUrl, redisUrl) {
  const auth = createRedisClient({ serverUrl, redis: { url: redisUrl, key: KEY } })
  const fire = async (count) => {
    const results = await Promise.allSettled(
      Array.from({ length: count }, async () => {
        const res = await auth.fetch(`${serverUrl}/api/resource`)
        await res.arrayBuffer()
        if (!res.ok) throw new Error(`HTTP ${res.status}`)
      }),
    )
    const failed = results.filter((r) => r.status === 'rejected')
    return { ok: count - failed.length, errors: failed.map((r) => r.reason?.message) }
  }
  const handlers = {
    login: ({ tokens }) => auth.login(tokens),
    fire: ({ count }) => fire(count),
    logout: () => auth.logout(),
    state: () => undefined,
  }
  process.on('message', async ({ id, type, ...args }) => {
    try {
      const reply = await handlers[type](args)
      process.send({ id, ...reply, state: stateOf(auth) })
    } catch (error) {
      process.send({ id, error: String(error?.message ?? error) })
    }
  })
  // An orphan must not keep running (or keep Redis connections open) if the parent dies.
  process.on('disconnect', () => process.exit(0))
  await auth.ready
  process.send({ id: 'ready', state: stateOf(auth) })
}

// ---------------------------------------------------------------- the parent

const children = new Set()
let redis
let server

/** Kills every child this demo started, then stops the token server and redis-server. */
async function cleanup() {
  for (const c of children) c.kill('SIGKILL')
  await server?.close()
  await redis?.stop()
}

/** Resolves with the child's reply to `id`; rejects on an error reply, its exit or a timeout. */
function reply(proc, id) {
  return new Promise((resolve, reject) => {
    const onMessage = (message) => {
      if (message?.id !== id) return
      if (message.error) finish(new Error(`process ${proc.n}: ${message.error}`))
      else finish(undefined, message)
    }
    const onExit = (code, signal) =>
      finish(new Error(`process ${proc.n} exited (${code ?? signal})`))
    const timer = setTimeout(
      () => finish(new Error(`process ${proc.n}: no answer within ${REPLY_TIMEOUT_MS} ms`)),
      REPLY_TIMEOUT_MS,
    )
    const finish = (error, message) => {
      clearTimeout(timer)
      proc.child.off('message', onMessage)
      proc.child.off('exit', onExit)
      if (error) reject(error)
      else resolve(message)
    }
    proc.child.on('message', onMessage)
    proc.child.once('exit', onExit)
  })
}

let nextId = 0
function ask(proc, message) {
  const id = ++nextId
  const answer = reply(proc, id)
  proc.child.send({ id, ...message })
  return answer
}

/** Forks process `n` and resolves once its `auth.ready` resolved, with its state then. */
async function startProcess(n) {
  const c = fork(SELF, ['child', server.url, redis.url])
  children.add(c)
  c.once('exit', () => children.delete(c))
  const proc = { n, child: c }
  const { state } = await reply(proc, 'ready')
  return { ...proc, state }
}

/** `<key>:record` is the shared record (see `redisCoordinator`'s `key`). */
async function untilRecorded() {
  const deadline = Date.now() + 5_000
  while (Number(await redis.command(['EXISTS', `${KEY}:record`])) !== 1) {
    if (Date.now() > deadline) throw new Error('the login never reached Redis')
    await sleep(10)
  }
}

/** Polls every process's state until none is signed in (or 5 s have passed). */
async function statesAfterLogout(procs) {
  const deadline = Date.now() + 5_000
  for (;;) {
    const states = await Promise.all(
      procs.map(async (p) => (await ask(p, { type: 'state' })).state),
    )
    if (states.every((s) => s === 'loggedOut') || Date.now() > deadline) return states
    await sleep(20)
  }
}

async function expiry(k, procs) {
  const before = server.counters
  server.expireAccessTokens()
  const results = await Promise.all(
    procs.map((p) => ask(p, { type: 'fire', count: REQUESTS_PER_PROCESS })),
  )
  const after = server.counters
  const refreshes = after.refreshCalls - before.refreshCalls
  const reuse = after.reuseDetections - before.reuseDetections
  const ok = results.reduce((sum, r) => sum + r.ok, 0)
  const errors = [...new Set(results.flatMap((r) => r.errors))]
  const failed = procs.length * REQUESTS_PER_PROCESS - ok
  console.log(
    `expiry ${k}: refresh calls ${refreshes} (processes ${procs.length}, requests ${ok} ok` +
      `${failed ? `, ${failed} failed: ${errors.join(', ')}` : ''}, reuse ${reuse})`,
  )
  return refreshes === 1 && reuse === 0 && failed === 0
}

/** Runs the demo; resolves with whether every check held. */
async function main() {
  redis = await startRedisServer()
  server = await createTestAuthServer()
  console.log(`redis-server on ${redis.url}, token server on ${server.url}, key "${KEY}"`)

  const first = await startProcess(1)
  await ask(first, { type: 'login', tokens: server.login() })
  await untilRecorded()
  console.log('process 1: logged in; the session is in Redis')
  const others = await Promise.all(
    Array.from({ length: PROCESSES - 1 }, (_, i) => startProcess(i + 2)),
  )
  for (const p of others) console.log(`process ${p.n}: started, state after auth.ready: ${p.state}`)
  const adopted = others.every((p) => p.state === 'authenticated')

  const procs = [first, ...others]
  let expiriesOk = true
  for (let k = 1; k <= EXPIRIES; k += 1) expiriesOk = (await expiry(k, procs)) && expiriesOk

  const leaving = procs[1]
  await ask(leaving, { type: 'logout' })
  const staying = procs.filter((p) => p !== leaving)
  const states = await statesAfterLogout(staying)
  const described = staying.map((p, i) => `process ${p.n} ${states[i]}`).join(', ')
  console.log(`logout in process ${leaving.n}: ${described}`)
  const loggedOut = states.every((s) => s === 'loggedOut')

  const { refreshCalls, reuseDetections } = server.counters
  console.log(
    `\nsummary: ${EXPIRIES} expiries, ${refreshCalls} refresh calls, ${reuseDetections} reuse detections; ` +
      `adopted on ready: ${adopted ? 'yes' : 'NO'}; logout reached every process: ${loggedOut ? 'yes' : 'NO'}`,
  )
  return adopted && expiriesOk && loggedOut
}

async function parent() {
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.once(signal, () => {
      cleanup().finally(() => process.exit(1))
    })
  }
  const deadline = setTimeout(() => {
    console.error(`demo:redis: not done after ${DEADLINE_MS / 1000} s`)
    cleanup().finally(() => process.exit(1))
  }, DEADLINE_MS)
  let passed = false
  try {
    passed = await main()
  } catch (error) {
    console.error(`demo:redis failed: ${error?.message ?? error}`)
  } finally {
    clearTimeout(deadline)
    await cleanup()
  }
  process.exitCode = passed ? 0 : 1
}

if (process.argv[2] === 'child') await child(process.argv[3], process.argv[4])
else await parent()
