import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { REFRESH_FAULT_KINDS } from '../../src/testing/index.js'
import {
  type Command,
  createWorld,
  formatCommand,
  type StorageMode,
  VARIANTS,
  type Variant,
  variantNamed,
  type World,
} from './world.js'

/**
 * Random interleavings of what an app, a token server, the clock and another tab do, run
 * against the real client and the real server, once with the client's requests sent through
 * axios and once through `auth.fetch`, and both again with DPoP. After every command and at
 * the end of every run, the invariants of DESIGN.md are checked:
 *
 * 1. at most one refresh in flight (the server's own count);
 * 2. every request settles exactly once, and the queue only exists while refreshing; at the
 *    end the server behaves and time passes until nothing waits, then every request must
 *    have settled; the server sees a request twice at most (a replay), with DPoP four times
 *    (each of those once more for a nonce);
 * 3. no refresh from a stale 401: each refresh episode must start for a token the server
 *    refuses, that is due on the client's clock, or after a failed refresh; and the server
 *    counts no more refresh calls than episodes plus failed calls (retries);
 * 7. after a logout nothing leaves with a token held before it, and no session comes back
 *    until a login (here or in another tab);
 * 8. the session ends (loggedOut / expired) only by a logout or after a rejection was issued
 *    (a 400/401/403 fault or a revocation), never from transient faults.
 *
 * With DPoP (RFC 9449): a server that binds tokens to the app's key and wants a nonce on
 * every route, clients that share that key pair, and three more commands: the server rotates
 * its nonce, challenges a request for a new one (and parks what comes back), and lets that
 * through. Invariants of their own, besides all the above:
 *
 * D1. every token leaves as `Authorization: DPoP` with a proof made for it and for its
 *     request (htm, htu, ath), never as Bearer; no proof leaves without its token, none twice;
 * D2. the server refuses no proof and sees none replayed, but for a request the world parked
 *     at the server past the proofs' iat window;
 * D3. a nonce challenge never starts a refresh; at the token endpoint it costs one more call
 *     (counted in invariant 3), never taken for a lost call (invariant 11 still holds).
 *
 * CI: 1 000 runs per variant, fixed seed (a DPoP variant takes about twice as long as its
 * Bearer one). `npm run test:fuzz` (FUZZ=1): many more runs, random seed (printed; FUZZ_SEED
 * and FUZZ_RUNS, per variant, override; FUZZ_TRANSPORT=axios, fetch, 'axios + DPoP' or
 * 'fetch + DPoP' (also spelled axios+dpop, fetch-dpop) runs only that one).
 */
const FUZZ = process.env.FUZZ === '1'
const SEED = FUZZ ? Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31) : 20_261_127
const RUNS = FUZZ ? Number(process.env.FUZZ_RUNS ?? 5_000) : 1_000
const ONLY = FUZZ ? process.env.FUZZ_TRANSPORT : undefined
const only = ONLY === undefined ? undefined : variantNamed(ONLY)
if (ONLY !== undefined && only === undefined) {
  throw new Error(`FUZZ_TRANSPORT must be one of ${VARIANTS.join(', ')}, not ${ONLY}`)
}
const variants = VARIANTS.filter((variant) => only === undefined || variant === only)

const FAULTS = REFRESH_FAULT_KINDS

const bearerCommands: fc.WeightedArbitrary<Command>[] = [
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('request' as const),
      count: fc.integer({ min: 1, max: 3 }),
      abortable: fc.boolean(),
    }),
  },
  { weight: 2, arbitrary: fc.constant({ kind: 'abort' } as const) },
  { weight: 2, arbitrary: fc.constant({ kind: 'hold' } as const) },
  { weight: 2, arbitrary: fc.constant({ kind: 'release' } as const) },
  { weight: 2, arbitrary: fc.constant({ kind: 'expire' } as const) },
  { weight: 1, arbitrary: fc.constant({ kind: 'revoke' } as const) },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('fault' as const),
      fault: fc.constantFrom(...FAULTS),
      times: fc.integer({ min: 1, max: 3 }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('advance' as const),
      ms: fc.constantFrom(500, 1_000, 4_000, 10_000, 12_000, 60_000, 1_740_000, 1_800_000),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('sleep' as const),
      ms: fc.constantFrom(60_000, 1_800_000, 3_600_000),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'wake' } as const) },
  { weight: 1, arbitrary: fc.constant({ kind: 'login' } as const) },
  { weight: 1, arbitrary: fc.constant({ kind: 'logout' } as const) },
  { weight: 1, arbitrary: fc.constant({ kind: 'otherTabLogin' } as const) },
  { weight: 1, arbitrary: fc.constant({ kind: 'otherTabLogout' } as const) },
  { weight: 1, arbitrary: fc.constant({ kind: 'otherTabRefresh' } as const) },
  { weight: 1, arbitrary: fc.constant({ kind: 'loginAs' } as const) },
  { weight: 1, arbitrary: fc.constant({ kind: 'dispose' } as const) },
  { weight: 2, arbitrary: fc.constant({ kind: 'holdRefresh' } as const) },
  { weight: 2, arbitrary: fc.constant({ kind: 'releaseRefresh' } as const) },
  { weight: 1, arbitrary: fc.constant({ kind: 'resend' } as const) },
  { weight: 1, arbitrary: fc.constant({ kind: 'zeroLifetime' } as const) },
  { weight: 1, arbitrary: fc.constant({ kind: 'rotateElsewhere' } as const) },
  { weight: 1, arbitrary: fc.constant({ kind: 'loginElsewhere' } as const) },
]

/** DPoP's own: the server's nonce changes, alone or by challenging a request. */
const dpopCommands: fc.WeightedArbitrary<Command>[] = [
  { weight: 2, arbitrary: fc.constant({ kind: 'rotateNonce' } as const) },
  {
    weight: 4,
    arbitrary: fc.record({ kind: fc.constant('challenge' as const), parked: fc.boolean() }),
  },
  { weight: 2, arbitrary: fc.constant({ kind: 'releaseChallenge' } as const) },
  // Refresh calls parked, and parked requests let through, more often: so that a challenge
  // meets a refresh under way.
  {
    weight: 3,
    arbitrary: fc.constant({ kind: 'holdRefresh' } as const),
  },
  { weight: 2, arbitrary: fc.constant({ kind: 'release' } as const) },
]

const commandsOf = (variant: Variant): fc.Arbitrary<Command> =>
  variant.endsWith('DPoP')
    ? fc.oneof(...bearerCommands, ...dpopCommands)
    : fc.oneof(...bearerCommands)

const storageMode: fc.Arbitrary<StorageMode> = fc.constantFrom(
  'memory',
  'memory',
  'async',
  'hung',
  'restore',
)

describe.each(variants)(
  'random interleavings against the real client (%s) and server',
  (variant) => {
    let world: World
    beforeAll(async () => {
      world = await createWorld(variant)
    })
    afterAll(async () => {
      await world?.close()
    })

    const invariants = variant.endsWith('DPoP')
      ? '1, 2, 3, 7, 8, 10, 11, 12, 13, D1, D2 and D3'
      : '1, 2, 3, 7, 8, 10, 11, 12 and 13'
    it(
      `keep invariants ${invariants} (${RUNS} runs, seed ${SEED})`,
      async () => {
        if (FUZZ) {
          console.log(
            `fuzzing ${variant}: ${RUNS} runs, seed ${SEED} (FUZZ_SEED=${SEED} FUZZ_TRANSPORT='${variant}' to replay)`,
          )
        }
        const started = Date.now()
        let runs = 0
        await fc.assert(
          fc.asyncProperty(
            fc.array(commandsOf(variant), { minLength: 1, maxLength: 20, size: 'medium' }),
            fc.integer({ min: 0, max: 2 ** 31 - 1 }),
            storageMode,
            async (commands, jitter, storage) => {
              runs += 1
              const violations = await world.run(commands, jitter, storage)
              if (violations.length > 0) {
                throw new Error(
                  `${violations.join('\n')}\n  after: login → ${commands.map(formatCommand).join(' → ')} (jitter seed ${jitter}, ${storage} storage, ${variant})`,
                )
              }
            },
          ),
          // FUZZ_NO_SHRINK=1 reports the first failing run as found, without shrinking it.
          { numRuns: RUNS, seed: SEED, endOnFailure: process.env.FUZZ_NO_SHRINK === '1' },
        )
        console.log(
          `${variant}: ${runs} runs in ${((Date.now() - started) / 1000).toFixed(1)} s, seed ${SEED}; exercised: ${JSON.stringify(world.exercised)}`,
        )
        expect(runs).toBe(RUNS)
        // The runs must keep reaching the situations the invariants are about.
        for (const [situation, count] of Object.entries(world.exercised)) {
          expect(count, `runs that exercised ${situation}`).toBeGreaterThan(0)
        }
      },
      FUZZ ? 3_600_000 : 120_000,
    )
  },
)
