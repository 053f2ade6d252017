import { connect } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type RedisServer, startRedisServer } from './redisServer.js'

/** Resolves with the socket error code, or 'connected' if something still listens. */
function probe(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port })
    socket.once('connect', () => {
      socket.destroy()
      resolve('connected')
    })
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message))
  })
}

describe('startRedisServer: a real redis-server for the tests', () => {
  let server: RedisServer

  beforeAll(async () => {
    server = await startRedisServer()
  })

  afterAll(async () => {
    await server?.stop()
  })

  it('listens on a free local port and answers PING', async () => {
    expect(server.url).toBe(`redis://127.0.0.1:${server.port}`)
    expect(server.port).not.toBe(6379)
    expect(await server.command(['PING'])).toBe('PONG')
    expect(await server.command(['INFO', 'server'])).toMatch(/redis_version:\d/)
  })

  it('round-trips values and parses each RESP2 reply type', async () => {
    expect(await server.command(['SET', 'k', 'v'])).toBe('OK')
    expect(await server.command(['GET', 'k'])).toBe('v')
    // Bulk lengths count bytes: CRLF and multi-byte characters inside a value must survive.
    const awkward = 'line one\r\nline two: é 🔑'
    await server.command(['SET', 'awkward', awkward])
    expect(await server.command(['GET', 'awkward'])).toBe(awkward)
    expect(await server.command(['INCR', 'counter'])).toBe(1)
    expect(await server.command(['GET', 'missing'])).toBeNull()
    await server.command(['HSET', 'h', 'a', '1', 'b', '2'])
    expect(await server.command(['HGETALL', 'h'])).toEqual(['a', '1', 'b', '2'])
    expect((await server.command(['KEYS', '*'])) as string[]).toEqual(
      expect.arrayContaining(['k', 'awkward', 'counter', 'h']),
    )
    expect(await server.command(['BLPOP', 'empty-list', '0.01'])).toBeNull()
    expect(await server.command(['EVAL', 'return {1, {"x", false}}', '0'])).toEqual([
      1,
      ['x', null],
    ])
    await expect(server.command(['NO-SUCH-COMMAND'])).rejects.toThrow(/ERR unknown command/)
  })

  it('reads a reply that spans many TCP packets', async () => {
    const big = 'x'.repeat(2 * 1024 * 1024)
    await server.command(['SET', 'big', big])
    expect(await server.command(['GET', 'big'])).toBe(big)
  })

  it('kill() crashes it: connections are refused until restart(), which comes back empty', async () => {
    await server.command(['SET', 'before-crash', '1'])
    await server.kill()
    expect(await probe(server.port)).toBe('ECONNREFUSED')
    await expect(server.command(['PING'])).rejects.toThrow(/ECONNREFUSED/)
    await server.kill()

    await server.restart()
    expect(await server.command(['PING'])).toBe('PONG')
    expect(await server.command(['KEYS', '*'])).toEqual([])
    expect(await server.command(['GET', 'before-crash'])).toBeNull()
  })
})

describe('startRedisServer: independent instances', () => {
  it('starts several at once, each on its own port with its own data', async () => {
    const servers = await Promise.all([startRedisServer(), startRedisServer(), startRedisServer()])
    try {
      expect(new Set(servers.map((s) => s.port)).size).toBe(3)
      await Promise.all(servers.map((s) => s.command(['SET', 'owner', String(s.port)])))
      for (const s of servers) expect(await s.command(['GET', 'owner'])).toBe(String(s.port))
    } finally {
      await Promise.all(servers.map((s) => s.stop()))
    }
  })

  it('stop() is idempotent, even concurrently, and frees the port', async () => {
    const server = await startRedisServer()
    await Promise.all([server.stop(), server.stop()])
    await server.stop()
    expect(await probe(server.port)).toBe('ECONNREFUSED')
    await expect(server.restart()).rejects.toThrow(/after stop/)
  })

  it('stop() during restart() stops the restarted process too', async () => {
    const server = await startRedisServer()
    const restarted = server.restart()
    await server.stop()
    await restarted
    expect(await probe(server.port)).toBe('ECONNREFUSED')
  })
})
