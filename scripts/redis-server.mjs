// A real redis-server (the Debian package) in a process of its own, for the tests
// (tests/redis/redisServer.ts re-exports it), the Redis benchmark and the Redis demo. Plain
// ESM so that Node scripts can import it without a build; its types are in
// redis-server.d.mts.

import { spawn } from 'node:child_process'
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs'
import { connect, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'

/** @typedef {import('./redis-server.d.mts').RedisServer} RedisServer */
/** @typedef {import('node:child_process').ChildProcess} ChildProcess */

const DEBIAN_BINARY = '/usr/bin/redis-server'
const NOT_INSTALLED =
  'redis-server is not installed: run `apt-get update && apt-get install -y redis-server` ' +
  '(the tests start their own instance; no system service is used).'
const HOST = '127.0.0.1'
const READY_DEADLINE_MS = 10_000
const READY_POLL_MS = 20
const PING_TIMEOUT_MS = 1_000
const COMMAND_TIMEOUT_MS = 5_000
const STOP_GRACE_MS = 2_000
const PORT_ATTEMPTS = 5
const OUTPUT_LIMIT = 64 * 1024
const OUTPUT_SETTLE_MS = 500
const BIND_FAILURE = /Could not create server TCP listening socket|Address already in use/i

/**
 * Starts a fresh, empty redis-server on a free local port; resolves once it answers PING.
 * @returns {Promise<RedisServer>}
 */
export async function startRedisServer() {
  const binary = findRedisServer()
  /** @type {Error | undefined} */
  let lastError
  // The port is free when we pick it but could be taken before redis binds it: pick another.
  for (let attempt = 0; attempt < PORT_ATTEMPTS; attempt++) {
    const port = await freePort()
    try {
      return serverHandle(binary, port, await launchReady(binary, port))
    } catch (error) {
      if (!(error instanceof BindError)) throw error
      lastError = error
    }
  }
  throw new Error(`redis-server could not bind a port in ${PORT_ATTEMPTS} attempts`, {
    cause: lastError,
  })
}

/**
 * @param {string} binary
 * @param {number} port
 * @param {Instance} first
 * @returns {RedisServer}
 */
function serverHandle(binary, port, first) {
  let current = first
  /** @type {Promise<void>} */
  let restarting = Promise.resolve()
  /** @type {Promise<void> | undefined} */
  let stopping
  return {
    port,
    url: `redis://${HOST}:${port}`,
    kill: () => crash(current),
    restart() {
      if (stopping) return Promise.reject(new Error('restart() after stop(): start a new server'))
      restarting = crash(current).then(async () => {
        current = await launchReady(binary, port)
      })
      return restarting
    },
    command: (args) => sendCommand(port, args, COMMAND_TIMEOUT_MS),
    stop() {
      // A stop() during restart() must stop the new process, not only the one it replaces.
      stopping ??= restarting.catch(() => {}).then(() => terminate(current))
      return stopping
    },
  }
}

// ---------------------------------------------------------------------------------------------
// The redis-server process

/**
 * One redis-server process; a restart makes a new one.
 * @typedef {object} Instance
 * @property {ChildProcess} child
 * @property {Promise<void>} exited
 * @property {() => boolean} hasExited
 * @property {() => Promise<string>} output
 */

class BindError extends Error {}

/** @returns {string} */
function findRedisServer() {
  const onPath = (process.env.PATH ?? '')
    .split(delimiter)
    .filter((dir) => dir !== '')
    .map((dir) => join(dir, 'redis-server'))
  const found = [DEBIAN_BINARY, ...onPath].find(isExecutable)
  if (found === undefined) throw new Error(NOT_INSTALLED)
  return found
}

/** @param {string} path */
function isExecutable(path) {
  try {
    accessSync(path, constants.X_OK)
    return true
  } catch {
    return false
  }
}

/** @returns {Promise<number>} */
function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createServer()
    probe.once('error', reject)
    probe.listen(0, HOST, () => {
      const { port } = /** @type {import('node:net').AddressInfo} */ (probe.address())
      probe.close(() => resolve(port))
    })
  })
}

/**
 * Launches redis-server on `port` and waits until it is ours and answers PING.
 * @param {string} binary
 * @param {number} port
 * @returns {Promise<Instance>}
 */
async function launchReady(binary, port) {
  const instance = launch(binary, port)
  try {
    await waitUntilReady(instance, port)
    return instance
  } catch (error) {
    await crash(instance)
    throw error
  }
}

/**
 * @param {string} binary
 * @param {number} port
 * @returns {Instance}
 */
function launch(binary, port) {
  // A fresh directory per process: even a stray SAVE from a test cannot leak into a restart.
  const dir = mkdtempSync(join(tmpdir(), 'redis-test-'))
  const child = spawn(
    binary,
    [
      '--port',
      String(port),
      '--bind',
      HOST,
      '--save',
      '',
      '--appendonly',
      'no',
      '--protected-mode',
      'no',
      '--daemonize',
      'no',
      '--dir',
      dir,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  )
  let output = ''
  /** @param {Buffer} chunk */
  const capture = (chunk) => {
    output = (output + chunk.toString('utf8')).slice(-OUTPUT_LIMIT)
  }
  child.stdout?.on('data', capture)
  child.stderr?.on('data', capture)

  /** @type {LiveProcess} */
  const entry = { child, dir, watchdog: startWatchdog(child, dir) }
  track(entry)
  let done = false
  /** @type {Promise<void>} */
  const exited = new Promise((resolve) => {
    const settle = () => {
      if (done) return
      done = true
      untrack(entry)
      resolve()
    }
    child.once('exit', settle)
    child.on('error', (error) => {
      capture(Buffer.from(`${error.message}\n`))
      // A process that never started emits no 'exit'.
      if (child.pid === undefined) settle()
    })
  })
  /** @type {Promise<void>} */
  const outputClosed = new Promise((resolve) => child.once('close', () => resolve()))
  return {
    child,
    exited,
    hasExited: () => done,
    // 'exit' can overtake the last output; a failure message wants all of it.
    output: async () => {
      await Promise.race([outputClosed, sleep(OUTPUT_SETTLE_MS)])
      return output
    },
  }
}

/**
 * @param {Instance} instance
 * @param {number} port
 * @returns {Promise<void>}
 */
async function waitUntilReady(instance, port) {
  const deadline = Date.now() + READY_DEADLINE_MS
  for (;;) {
    if (instance.hasExited()) throw await startFailure(instance, port, 'it exited')
    if (await isOurServerReady(instance, port)) return
    if (Date.now() > deadline) {
      throw await startFailure(instance, port, `no PONG within ${READY_DEADLINE_MS} ms`)
    }
    await sleep(READY_POLL_MS)
  }
}

/**
 * PONG alone is not enough: if another test's redis took the port first, it answers while
 * ours is still failing to bind. The pid in INFO tells them apart.
 * @param {Instance} instance
 * @param {number} port
 * @returns {Promise<boolean>}
 */
async function isOurServerReady(instance, port) {
  try {
    if ((await sendCommand(port, ['PING'], PING_TIMEOUT_MS)) !== 'PONG') return false
    const info = await sendCommand(port, ['INFO', 'server'], PING_TIMEOUT_MS)
    return typeof info === 'string' && info.includes(`process_id:${instance.child.pid}\r\n`)
  } catch {
    return false
  }
}

/**
 * @param {Instance} instance
 * @param {number} port
 * @param {string} reason
 * @returns {Promise<Error>}
 */
async function startFailure(instance, port, reason) {
  const output = await instance.output()
  const message = `redis-server failed to start on ${HOST}:${port} (${reason}). Output:\n${output}`
  return BIND_FAILURE.test(output) ? new BindError(message) : new Error(message)
}

/**
 * @param {Instance} instance
 * @returns {Promise<void>}
 */
function crash(instance) {
  if (!instance.hasExited()) instance.child.kill('SIGKILL')
  return instance.exited
}

/**
 * @param {Instance} instance
 * @returns {Promise<void>}
 */
async function terminate(instance) {
  if (instance.hasExited()) return
  instance.child.kill('SIGTERM')
  /** @type {NodeJS.Timeout | undefined} */
  let timer
  /** @type {Promise<'late'>} */
  const grace = new Promise((resolve) => {
    timer = setTimeout(() => resolve('late'), STOP_GRACE_MS)
  })
  const outcome = await Promise.race([instance.exited, grace])
  clearTimeout(timer)
  if (outcome === 'late') await crash(instance)
}

// ---------------------------------------------------------------------------------------------
// Never leave a redis-server behind

/**
 * A running server and what to clean up with it.
 * @typedef {object} LiveProcess
 * @property {ChildProcess} child
 * @property {string} dir
 * @property {ChildProcess | undefined} watchdog
 */

/** @type {Set<LiveProcess>} */
const live = new Set()
let exitHookInstalled = false

/** @param {LiveProcess} entry */
function track(entry) {
  live.add(entry)
  if (exitHookInstalled) return
  exitHookInstalled = true
  // Covers a test run that ends through process.exit or an uncaught exception.
  process.once('exit', () => {
    for (const orphan of live) {
      release(orphan)
      orphan.child.kill('SIGKILL')
    }
  })
}

/** @param {LiveProcess} entry */
function untrack(entry) {
  live.delete(entry)
  release(entry)
}

/** @param {LiveProcess} entry */
function release({ watchdog, dir }) {
  // First: once the server is gone its pid may be reused, which the watchdog must never signal.
  watchdog?.kill('SIGKILL')
  rmSync(dir, { recursive: true, force: true })
}

/**
 * A signal kills Node without running 'exit' handlers, and vitest ends its fork workers with
 * SIGTERM (SIGKILL after 500 ms). This shell waits on a pipe from us that only closes when our
 * process is gone, however it died, then kills the server and removes its directory.
 * @param {ChildProcess} child
 * @param {string} dir
 * @returns {ChildProcess | undefined}
 */
function startWatchdog(child, dir) {
  if (child.pid === undefined) return undefined
  const watchdog = spawn(
    '/bin/sh',
    ['-c', 'read -r _; kill -9 "$1"; rm -rf "$2"', 'redis-watchdog', String(child.pid), dir],
    { stdio: ['pipe', 'ignore', 'ignore'] },
  )
  // Best effort: without /bin/sh the 'exit' handler still covers a normal exit.
  watchdog.on('error', () => {})
  watchdog.stdin?.on('error', () => {})
  return watchdog
}

/**
 * @param {number} ms
 * @returns {Promise<void>}
 */
function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

// ---------------------------------------------------------------------------------------------
// RESP2 over one short-lived connection per command

/**
 * A parsed reply; arrays hold replies (JSDoc cannot name a type recursively, hence `unknown`).
 * @typedef {string | number | null | ReplyError | unknown[]} Reply
 */

/** An error reply (`-ERR ...`); nested inside an array (EXEC) it is returned, not thrown. */
class ReplyError extends Error {}

/**
 * @param {number} port
 * @param {string[]} args
 * @param {number} timeoutMs
 * @returns {Promise<unknown>}
 */
function sendCommand(port, args, timeoutMs) {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: HOST, port })
    let received = Buffer.alloc(0)
    let settled = false
    /**
     * @param {unknown} error
     * @param {Reply} [reply]
     */
    const finish = (error, reply) => {
      if (settled) return
      settled = true
      socket.destroy()
      if (error !== undefined) reject(error)
      else resolve(reply)
    }
    socket.setTimeout(timeoutMs, () => {
      finish(new Error(`no reply to ${args[0] ?? 'command'} within ${timeoutMs} ms`))
    })
    socket.once('error', (error) => finish(error))
    socket.once('close', () => finish(new Error('connection closed before a complete reply')))
    socket.on('data', (/** @type {Buffer} */ chunk) => {
      received = Buffer.concat([received, chunk])
      try {
        const parsed = parseReply(received, 0)
        if (parsed === undefined) return
        if (parsed.value instanceof ReplyError) finish(parsed.value)
        else finish(undefined, parsed.value)
      } catch (error) {
        finish(error)
      }
    })
    socket.write(encodeCommand(args))
  })
}

/**
 * @param {string[]} args
 * @returns {Buffer}
 */
function encodeCommand(args) {
  const parts = args.map((arg) => `$${Buffer.byteLength(arg)}\r\n${arg}\r\n`)
  return Buffer.from(`*${args.length}\r\n${parts.join('')}`)
}

/**
 * @typedef {object} Parsed
 * @property {Reply} value
 * @property {number} end Offset just past this reply.
 */

/**
 * Parses one reply starting at `start`; undefined while the buffer holds only part of it.
 * @param {Buffer} buffer
 * @param {number} start
 * @returns {Parsed | undefined}
 */
function parseReply(buffer, start) {
  const lineEnd = buffer.indexOf('\r\n', start)
  if (lineEnd === -1) return undefined
  const type = String.fromCharCode(buffer[start] ?? 0)
  const line = buffer.toString('utf8', start + 1, lineEnd)
  const next = lineEnd + 2
  switch (type) {
    case '+':
      return { value: line, end: next }
    case '-':
      return { value: new ReplyError(line), end: next }
    case ':':
      return { value: Number(line), end: next }
    case '$':
      return parseBulk(buffer, next, Number(line))
    case '*':
      return parseArray(buffer, next, Number(line))
    default:
      throw new Error(`unexpected RESP reply type ${JSON.stringify(type)}`)
  }
}

/**
 * @param {Buffer} buffer
 * @param {number} start
 * @param {number} length
 * @returns {Parsed | undefined}
 */
function parseBulk(buffer, start, length) {
  if (length < 0) return { value: null, end: start }
  const end = start + length
  // Lengths count bytes, so a value may itself contain CRLF: never scan for a terminator.
  if (buffer.length < end + 2) return undefined
  return { value: buffer.toString('utf8', start, end), end: end + 2 }
}

/**
 * @param {Buffer} buffer
 * @param {number} start
 * @param {number} count
 * @returns {Parsed | undefined}
 */
function parseArray(buffer, start, count) {
  if (count < 0) return { value: null, end: start }
  /** @type {Reply[]} */
  const items = []
  let offset = start
  for (let i = 0; i < count; i++) {
    const item = parseReply(buffer, offset)
    if (item === undefined) return undefined
    items.push(item.value)
    offset = item.end
  }
  return { value: items, end: offset }
}
