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
// With DPoP, servers may also challenge a request for a nonce: the client paths include it.
const dpopClientPaths = createAuthModel({
  configureAuthMachine,
  profile: 'client',
  dpop: true,
}).paths()
/** Transitions only a DPoP client can cause: a Bearer client is never asked for a nonce. */
const needsDpop = (t: DeclaredTransition) => t.label.includes('─NONCE_CHALLENGED')

function report(
  executor: string,
  walked: Set<string>,
  expected: DeclaredTransition[] = declared,
): DeclaredTransition[] {
  const gaps = expected.filter((t) => !walked.has(t.key))
  const lines = [
    `${executor}: transitions covered: ${expected.length - gaps.length}/${expected.length}`,
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
    expect(dpopClientPaths.length).toBeGreaterThan(clientPaths.length)
    for (const paths of [machinePaths, clientPaths, dpopClientPaths]) {
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
  const paths = unique([...machinePaths, ...clientPaths, ...dpopClientPaths])
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
function walkOnClient(
  label: string,
  transport: Transport,
  elsewhere: () => Elsewhere,
  dpopKey?: () => CryptoKeyPair,
): void {
  const walked = new Set<string>()
  const attempts: string[] = []
  const paths = dpopKey ? dpopClientPaths : clientPaths
  const offsets = faultOffsets(paths)
  for (const [index, path] of paths.entries()) {
    it(`#${index + 1} ${path.name}`, async () => {
      const run = await runOnClient(path, offsets[index], transport, elsewhere(), dpopKey?.())
      for (const key of run.transitions) walked.add(key)
      attempts.push(...run.attempts)
    })
  }

  it('walked every declared transition: the client can cause each one', () => {
    const expected = dpopKey ? declared : declared.filter((t) => !needsDpop(t))
    const gaps = report(`executor (b, ${label}), ${paths.length} paths`, walked, expected)
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

// And with DPoP: every request carries a proof, and the server challenges probes for a nonce.
// The tabs share the app's key pair (in Node there is no IndexedDB to share a made one).
describe.each(TRANSPORTS)(
  'executor (b, %s + DPoP): every client path, nonce challenges included',
  (transport) => {
    let key: CryptoKeyPair | undefined
    beforeAll(async () => {
      key = (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, [
        'sign',
        'verify',
      ])) as CryptoKeyPair
    })
    walkOnClient(
      `${transport} + DPoP`,
      transport,
      () => ({ kind: 'tabs' }),
      () => {
        if (!key) throw new Error('no key pair')
        return key
      },
    )
  },
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
