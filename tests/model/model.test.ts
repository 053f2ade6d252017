import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { authMachine, configureAuthMachine } from '../../machines/index.js'
import { type RedisServer, startRedisServer } from '../redis/redisServer.js'
import { type Elsewhere, faultOffsets, runOnClient } from './clientExecutor.js'
import {
  createAuthModel,
  type DeclaredTransition,
  declaredTransitions,
  type ModelPath,
} from './paths.mjs'
import { runOnMachine } from './pureExecutor.js'
import { TRANSPORTS, type Transport } from './transports.js'

// Paths are generated here, at test time, from the machine in machines/: never by hand.
const declared = declaredTransitions(authMachine)
const machinePaths = createAuthModel({ configureAuthMachine, profile: 'machine' }).paths()
const clientPaths = createAuthModel({ configureAuthMachine, profile: 'client' }).paths()

function report(executor: string, walked: Set<string>): DeclaredTransition[] {
  const gaps = declared.filter((t) => !walked.has(t.key))
  const lines = [
    `${executor}: transitions covered: ${declared.length - gaps.length}/${declared.length}`,
    ...gaps.map((t) => `  not covered: ${t.label}`),
  ]
  console.log(lines.join('\n'))
  return gaps
}

function unique(paths: ModelPath[]): ModelPath[] {
  const seen = new Set<string>()
  return paths.filter((path) => !seen.has(path.name) && seen.add(path.name))
}

describe('paths generated from the machine', () => {
  it('exist for both profiles, each unique and none a prefix of another', () => {
    expect(declared.length).toBeGreaterThan(0)
    expect(machinePaths.length).toBeGreaterThan(0)
    expect(clientPaths.length).toBeGreaterThan(0)
    for (const paths of [machinePaths, clientPaths]) {
      const names = paths.map((p) => p.name)
      expect(new Set(names).size).toBe(names.length)
      for (const a of names) {
        for (const b of names)
          if (a !== b) expect(b.startsWith(`${a} → `), `${a} ⊂ ${b}`).toBe(false)
      }
    }
  })
})

describe('executor (a): every path on the pure statechart', () => {
  const walked = new Set<string>()
  const paths = unique([...machinePaths, ...clientPaths])
  for (const [index, path] of paths.entries()) {
    it(`#${index + 1} ${path.name}`, async () => {
      for (const key of await runOnMachine(path)) walked.add(key)
    })
  }

  it('walked every declared transition', () => {
    const gaps = report(`executor (a), ${paths.length} paths`, walked)
    expect(
      gaps.map((t) => t.label).join('\n') || 'none',
      'declared transitions no path walks',
    ).toBe('none')
  })
})

/**
 * Executor (b) on one transport, the other clients of the session elsewhere: the same client
 * paths, each on the real client and token server.
 */
function walkOnClient(label: string, transport: Transport, elsewhere: () => Elsewhere): void {
  const walked = new Set<string>()
  const attempts: string[] = []
  const offsets = faultOffsets(clientPaths)
  for (const [index, path] of clientPaths.entries()) {
    it(`#${index + 1} ${path.name}`, async () => {
      const run = await runOnClient(path, offsets[index], transport, elsewhere())
      for (const key of run.transitions) walked.add(key)
      attempts.push(...run.attempts)
    })
  }

  it('walked every declared transition: the client can cause each one', () => {
    const gaps = report(`executor (b, ${label}), ${clientPaths.length} paths`, walked)
    console.log(`refresh calls ended by the server: ${[...new Set(attempts)].sort().join(', ')}`)
    expect(
      gaps.map((t) => t.label).join('\n') || 'none',
      'declared transitions the client paths do not walk',
    ).toBe('none')
  })
}

// One executor per transport: the same paths, the requests sent through axios or auth.fetch.
describe.each(TRANSPORTS)(
  'executor (b, %s): every client path on the real client and token server',
  (transport) => walkOnClient(transport, transport, () => ({ kind: 'tabs' })),
)

// And with the other clients as processes behind a real redis-server: adopting a session,
// a logout elsewhere and a lost lock are the Redis driver's decisions, walked as machine events.
describe('executor (b, fetch + Redis): every client path, the session shared through Redis', () => {
  let redis: RedisServer | undefined
  beforeAll(async () => {
    redis = await startRedisServer()
  })
  afterAll(() => redis?.stop())
  walkOnClient('fetch + Redis', 'fetch', () => {
    if (!redis) throw new Error('redis-server did not start')
    return { kind: 'redis', redisUrl: redis.url }
  })
})
