import { describe, expect, it } from 'vitest'
import { createActor, fromPromise } from 'xstate'
import {
  type AuthEmitted,
  authMachine,
  configureAuthMachine,
  MAX_TIMER_DELAY,
  type RefreshFailure,
  type RefreshInput,
  type Session,
} from '../../machines/index.js'
import { createManualClock } from '../../src/testing/index.js'

const HOUR = 3_600_000

/** A machine whose refresh is settled by hand, on a manual clock. */
function start(timing: Parameters<typeof configureAuthMachine>[0] = {}) {
  const clock = createManualClock(1_000_000)
  const refreshes: Array<{
    resolve: (session: Session) => void
    reject: (failure: RefreshFailure) => void
    signal: AbortSignal
  }> = []
  const machine = configureAuthMachine({ now: clock.now, ...timing }).provide({
    actors: {
      refreshSession: fromPromise<Session, RefreshInput>(
        ({ signal }) =>
          new Promise((resolve, reject) => refreshes.push({ resolve, reject, signal })),
      ),
    },
  })
  const actor = createActor(machine, { clock })
  const emitted: AuthEmitted[] = []
  actor.on('*', (event) => emitted.push(event))
  actor.start()
  const session = (token: string, lifetime = HOUR): Session => ({
    accessToken: token,
    refreshToken: `r-${token}`,
    obtainedAt: clock.now(),
    expiresAt: clock.now() + lifetime,
  })
  const request = (id: string) => ({ id, method: 'GET', url: '/x', enqueuedAt: clock.now() })
  /** Lets the refresh promise's settlement reach the actor. */
  const settle = () => new Promise((resolve) => setImmediate(resolve))
  return { actor, clock, refreshes, emitted, session, request, settle }
}

const transient: RefreshFailure = {
  rejected: false,
  error: { code: 'REFRESH_FAILED', message: 'HTTP 503', status: 503 },
}
const rejection: RefreshFailure = {
  rejected: true,
  error: { code: 'SESSION_EXPIRED', message: 'rejected', status: 401 },
}

describe('the statechart, row by row', () => {
  it('starts logged out and LOGIN makes it authenticated with generation 1', () => {
    const { actor, session } = start()
    expect(actor.getSnapshot().value).toBe('loggedOut')
    actor.send({ type: 'LOGIN', session: session('a') })
    expect(actor.getSnapshot().value).toEqual({ authenticated: 'fresh' })
    expect(actor.getSnapshot().context.generation).toBe(1)
  })

  it('TOKEN_REJECTED of the current generation enqueues and refreshes once', async () => {
    const { actor, session, request, refreshes, emitted, settle } = start()
    actor.send({ type: 'LOGIN', session: session('a') })
    actor.send({ type: 'TOKEN_REJECTED', request: request('1'), generation: 1, epoch: 1 })
    actor.send({ type: 'TOKEN_REJECTED', request: request('2'), generation: 1, epoch: 1 })
    actor.send({ type: 'TOKEN_NEEDED', request: request('3') })
    expect(actor.getSnapshot().value).toEqual({ refreshing: 'requesting' })
    expect(actor.getSnapshot().context.queue.map((r) => r.id)).toEqual(['1', '2', '3'])
    expect(refreshes).toHaveLength(1)

    refreshes[0]?.resolve(session('b'))
    await settle()
    const snapshot = actor.getSnapshot()
    expect(snapshot.value).toEqual({ authenticated: 'fresh' })
    expect(snapshot.context).toMatchObject({ generation: 2, queue: [], attempt: 0, error: null })
    expect(snapshot.context.session?.accessToken).toBe('b')
    expect(emitted).toEqual([
      { type: 'requestsReleased', ids: ['1', '2', '3'] },
      { type: 'refreshed', generation: 2 },
    ])
  })

  it('TOKEN_REJECTED of an older generation releases that request without a refresh', () => {
    const { actor, session, request, refreshes, emitted, clock } = start()
    actor.send({ type: 'LOGIN', session: session('a') })
    clock.advance(1)
    // Another tab refreshed: same session (epoch), newer token (generation).
    actor.send({ type: 'SESSION_SYNCED', session: session('b') })
    expect(actor.getSnapshot().context).toMatchObject({ generation: 2, epoch: 1 })
    actor.send({ type: 'TOKEN_REJECTED', request: request('old'), generation: 1, epoch: 1 })
    expect(actor.getSnapshot().value).toEqual({ authenticated: 'fresh' })
    expect(refreshes).toHaveLength(0)
    expect(emitted).toEqual([{ type: 'requestsReleased', ids: ['old'] }])
  })

  it('TOKEN_REJECTED from another epoch (logout, another user) is rejected, never replayed', () => {
    const { actor, session, request, refreshes, emitted } = start()
    actor.send({ type: 'LOGIN', session: session('alice') })
    actor.send({ type: 'LOGOUT' })
    actor.send({ type: 'LOGIN', session: session('bob') })
    const { epoch, generation } = actor.getSnapshot().context
    expect(epoch).toBe(3)
    actor.send({ type: 'TOKEN_REJECTED', request: request('alice'), generation: 1, epoch: 1 })
    expect(actor.getSnapshot().value).toEqual({ authenticated: 'fresh' })
    expect(actor.getSnapshot().context.generation).toBe(generation)
    expect(refreshes).toHaveLength(0)
    expect(emitted.at(-1)).toEqual({
      type: 'requestsRejected',
      ids: ['alice'],
      error: expect.objectContaining({ code: 'LOGGED_OUT' }),
    })
    // Also while refreshing: the old epoch's request does not join the queue.
    actor.send({ type: 'TOKEN_REJECTED', request: request('bob'), generation, epoch })
    actor.send({ type: 'TOKEN_REJECTED', request: request('alice2'), generation: 1, epoch: 1 })
    expect(actor.getSnapshot().context.queue.map((r) => r.id)).toEqual(['bob'])
    expect(emitted.at(-1)).toMatchObject({ type: 'requestsRejected', ids: ['alice2'] })
  })

  it('LOGIN while refreshing rejects what waited: it belonged to the old session', () => {
    const { actor, session, request, refreshes, emitted } = start()
    actor.send({ type: 'LOGIN', session: session('alice') })
    actor.send({ type: 'TOKEN_NEEDED', request: request('1') })
    actor.send({ type: 'LOGIN', session: session('bob') })
    expect(refreshes[0]?.signal.aborted).toBe(true)
    expect(actor.getSnapshot().value).toEqual({ authenticated: 'fresh' })
    expect(emitted).toEqual([
      {
        type: 'requestsRejected',
        ids: ['1'],
        error: expect.objectContaining({ code: 'LOGGED_OUT' }),
      },
    ])
  })

  it('a refresh answer that comes after the timeout is adopted in backoff and in stale', () => {
    const { actor, session, request, refreshes, emitted, clock } = start({
      refreshTimeout: 5000,
      retry: { retries: 1, baseDelay: 1000, maxDelay: 1000 },
    })
    actor.send({ type: 'LOGIN', session: session('a') })
    actor.send({ type: 'TOKEN_NEEDED', request: request('1') })
    clock.advance(5000)
    expect(actor.getSnapshot().value).toEqual({ refreshing: 'backoff' })
    actor.send({ type: 'REFRESH_ANSWERED', session: session('b'), generation: 1 })
    expect(actor.getSnapshot().value).toEqual({ authenticated: 'fresh' })
    expect(actor.getSnapshot().context).toMatchObject({ generation: 2, epoch: 1, queue: [] })
    expect(emitted.map((e) => e.type)).toEqual(['requestsReleased', 'refreshed'])

    // Given up (stale), then the abandoned call answers: adopted.
    actor.send({ type: 'TOKEN_NEEDED', request: request('2') })
    clock.advance(5000)
    actor.send({ type: 'WAKE' })
    clock.advance(5000)
    expect(actor.getSnapshot().value).toEqual({ authenticated: 'stale' })
    actor.send({ type: 'REFRESH_ANSWERED', session: session('c'), generation: 2 })
    expect(actor.getSnapshot().value).toEqual({ authenticated: 'fresh' })
    expect(actor.getSnapshot().context.session?.accessToken).toBe('c')
    // An answer for a session that is no longer current is dropped.
    actor.send({ type: 'REFRESH_ANSWERED', session: session('d'), generation: 2 })
    expect(actor.getSnapshot().context.session?.accessToken).toBe('c')
    expect(refreshes).toHaveLength(3)
  })

  it('RESTORED is taken only before any login or logout: logout wins over the restore', () => {
    const { actor, session } = start()
    actor.send({ type: 'LOGOUT' })
    actor.send({ type: 'RESTORED', session: session('stored') })
    expect(actor.getSnapshot().value).toBe('loggedOut')
    const other = start()
    other.actor.send({ type: 'RESTORED', session: other.session('stored') })
    expect(other.actor.getSnapshot().value).toEqual({ authenticated: 'fresh' })
  })

  it('a token with no lifetime (expiresIn 0) arms no proactive refresh: no loop', () => {
    const { actor, session, clock, refreshes } = start()
    actor.send({ type: 'LOGIN', session: session('a', 0) })
    for (let i = 0; i < 100; i += 1) clock.advance(10)
    expect(refreshes).toHaveLength(0)
    expect(actor.getSnapshot().value).toEqual({ authenticated: 'fresh' })
  })

  it('the expiry timer starts a refresh at expiresAt − margin, WAKE only when due', () => {
    const { actor, session, clock, refreshes } = start({ refreshMargin: 60_000 })
    actor.send({ type: 'LOGIN', session: session('a') })
    actor.send({ type: 'WAKE' })
    expect(refreshes).toHaveLength(0)
    clock.advance(HOUR - 60_001)
    expect(actor.getSnapshot().value).toEqual({ authenticated: 'fresh' })
    clock.advance(1)
    expect(actor.getSnapshot().value).toEqual({ refreshing: 'requesting' })
  })

  it('WAKE starts a due refresh when the timer could not fire (sleeping laptop)', () => {
    const { actor, session, clock, refreshes } = start()
    actor.send({ type: 'LOGIN', session: session('a') })
    // Time jumps without timers running, as after a suspend.
    const realNow = clock.now() + 2 * HOUR
    const machine = configureAuthMachine({ now: () => realNow })
    const woken = createActor(machine, {
      snapshot: actor.getPersistedSnapshot(),
      clock: { setTimeout: () => 0, clearTimeout: () => undefined },
    })
    woken.start()
    woken.send({ type: 'WAKE' })
    expect(woken.getSnapshot().value).toEqual({ refreshing: 'requesting' })
    woken.stop()
    expect(refreshes).toHaveLength(0)
  })

  it('a rejected refresh expires the session and rejects the queue', async () => {
    const { actor, session, request, refreshes, emitted, settle } = start()
    actor.send({ type: 'LOGIN', session: session('a') })
    actor.send({ type: 'TOKEN_NEEDED', request: request('1') })
    refreshes[0]?.reject(rejection)
    await settle()
    const snapshot = actor.getSnapshot()
    expect(snapshot.value).toBe('expired')
    expect(snapshot.context).toMatchObject({ session: null, queue: [] })
    expect(emitted.map((e) => e.type)).toEqual(['requestsRejected', 'sessionExpired'])
    // A 401 arriving in expired is rejected at once, never queued.
    actor.send({ type: 'TOKEN_REJECTED', request: request('2'), generation: 1, epoch: 1 })
    expect(emitted.at(-1)).toMatchObject({ type: 'requestsRejected', ids: ['2'] })
    actor.send({ type: 'LOGIN', session: session('c') })
    expect(actor.getSnapshot().context).toMatchObject({ generation: 2, error: null })
  })

  it('transient failures back off and retry, then give up into authenticated.stale', async () => {
    const { actor, session, request, refreshes, emitted, clock, settle } = start({
      retry: { retries: 2, baseDelay: 1000, maxDelay: 1000 },
      random: () => 1,
    })
    actor.send({ type: 'LOGIN', session: session('a') })
    actor.send({ type: 'TOKEN_NEEDED', request: request('1') })
    for (let attempt = 1; attempt <= 2; attempt += 1) {
      refreshes[attempt - 1]?.reject(transient)
      await settle()
      expect(actor.getSnapshot().value).toEqual({ refreshing: 'backoff' })
      expect(actor.getSnapshot().context.attempt).toBe(attempt)
      clock.advance(999)
      expect(refreshes).toHaveLength(attempt)
      clock.advance(1)
      expect(refreshes).toHaveLength(attempt + 1)
    }
    refreshes[2]?.reject(transient)
    await settle()
    const snapshot = actor.getSnapshot()
    expect(snapshot.value).toEqual({ authenticated: 'stale' })
    expect(snapshot.context.session?.accessToken).toBe('a')
    expect(snapshot.context.error).toEqual(transient.error)
    expect(emitted).toEqual([{ type: 'requestsRejected', ids: ['1'], error: transient.error }])
    // Back online: WAKE tries again.
    actor.send({ type: 'WAKE' })
    expect(actor.getSnapshot().value).toEqual({ refreshing: 'requesting' })
  })

  it('an attempt that exceeds refreshTimeout stops waiting and counts as a transient failure', () => {
    const { actor, session, request, refreshes, clock } = start({
      refreshTimeout: 5000,
      retry: { retries: 1, baseDelay: 100, maxDelay: 100 },
    })
    actor.send({ type: 'LOGIN', session: session('a') })
    actor.send({ type: 'TOKEN_NEEDED', request: request('1') })
    clock.advance(5000)
    // The attempt stops waiting; the call itself is the client's to keep (see src/refresh.ts).
    expect(refreshes[0]?.signal.aborted).toBe(true)
    expect(actor.getSnapshot().value).toEqual({ refreshing: 'backoff' })
    actor.send({ type: 'WAKE' })
    expect(actor.getSnapshot().value).toEqual({ refreshing: 'requesting' })
    clock.advance(5000)
    expect(actor.getSnapshot().value).toEqual({ authenticated: 'stale' })
    expect(actor.getSnapshot().context.error?.code).toBe('REFRESH_TIMEOUT')
  })

  it('REQUEST_ABORTED rejects only that request; unknown ids are ignored', () => {
    const { actor, session, request, emitted } = start()
    actor.send({ type: 'LOGIN', session: session('a') })
    actor.send({ type: 'TOKEN_NEEDED', request: request('1') })
    actor.send({ type: 'TOKEN_NEEDED', request: request('2') })
    actor.send({ type: 'REQUEST_ABORTED', id: '1' })
    actor.send({ type: 'REQUEST_ABORTED', id: 'nope' })
    expect(actor.getSnapshot().context.queue.map((r) => r.id)).toEqual(['2'])
    expect(emitted).toEqual([
      {
        type: 'requestsRejected',
        ids: ['1'],
        error: expect.objectContaining({ code: 'CANCELED' }),
      },
    ])
  })

  it('LOGOUT during a refresh cancels it, rejects the queue and ignores the late result', async () => {
    const { actor, session, request, refreshes, emitted, settle } = start()
    actor.send({ type: 'LOGIN', session: session('a') })
    actor.send({ type: 'TOKEN_NEEDED', request: request('1') })
    actor.send({ type: 'LOGOUT' })
    expect(refreshes[0]?.signal.aborted).toBe(true)
    refreshes[0]?.resolve(session('late'))
    actor.send({ type: 'REFRESH_ANSWERED', session: session('late'), generation: 1 })
    await settle()
    expect(actor.getSnapshot().value).toBe('loggedOut')
    expect(actor.getSnapshot().context).toMatchObject({ session: null, queue: [] })
    expect(emitted.map((e) => e.type)).toEqual(['requestsRejected', 'loggedOut'])
  })

  it('SESSION_SYNCED adopts a newer session and releases the queue; older ones are ignored', () => {
    const { actor, session, request, emitted, clock } = start()
    const older = session('old')
    clock.advance(10)
    actor.send({ type: 'LOGIN', session: session('a') })
    actor.send({ type: 'SESSION_SYNCED', session: older })
    expect(actor.getSnapshot().context.session?.accessToken).toBe('a')
    actor.send({ type: 'TOKEN_NEEDED', request: request('1') })
    clock.advance(10)
    actor.send({ type: 'SESSION_SYNCED', session: session('other-tab') })
    expect(actor.getSnapshot().value).toEqual({ authenticated: 'fresh' })
    expect(actor.getSnapshot().context).toMatchObject({ generation: 2, queue: [] })
    expect(emitted).toEqual([{ type: 'requestsReleased', ids: ['1'] }])
  })

  it('SESSION_SYNCED of another sign-in (messages crossing a login) is ignored: no user switch', () => {
    const { actor, session, request, emitted, clock } = start()
    actor.send({ type: 'LOGIN', session: { ...session('bob'), id: 'bob' } })
    actor.send({ type: 'TOKEN_NEEDED', request: request('1') })
    clock.advance(10)
    actor.send({ type: 'SESSION_SYNCED', session: { ...session('alice-refreshed'), id: 'alice' } })
    expect(actor.getSnapshot().value).toEqual({ refreshing: 'requesting' })
    expect(actor.getSnapshot().context.session?.id).toBe('bob')
    expect(emitted).toEqual([])
  })

  it('SESSION_ENDED from another tab logs out from any signed-in state', () => {
    const { actor, session } = start()
    actor.send({ type: 'LOGIN', session: session('a') })
    actor.send({ type: 'SESSION_ENDED' })
    expect(actor.getSnapshot().value).toBe('loggedOut')
  })

  it('requests in loggedOut are rejected at once with LOGGED_OUT', () => {
    const { actor, request, emitted } = start()
    actor.send({ type: 'TOKEN_REJECTED', request: request('1'), generation: 0, epoch: 0 })
    expect(emitted).toEqual([
      {
        type: 'requestsRejected',
        ids: ['1'],
        error: expect.objectContaining({ code: 'LOGGED_OUT' }),
      },
    ])
  })

  it('never arms a timer beyond 2^31−1 ms, whatever the lifetime', () => {
    const { actor, session, clock, refreshes } = start()
    actor.send({ type: 'LOGIN', session: session('a', 400 * 24 * HOUR) })
    for (let i = 0; i < 10; i += 1) clock.advance(MAX_TIMER_DELAY)
    expect(clock.maxDelayArmed).toBeLessThanOrEqual(MAX_TIMER_DELAY)
    expect(refreshes).toHaveLength(0)
  })

  it('names every action, guard, delay and actor, so the Stately editor shows no "inline"', () => {
    const definition = JSON.stringify(authMachine.definition)
    expect(definition).not.toMatch(/inline/)
    const implementations = authMachine.implementations
    for (const [, name] of definition.matchAll(/"(?:guard|src)":"([^"]+)"/g)) {
      expect(
        { ...implementations.guards, ...implementations.actors }[name ?? ''],
        name,
      ).toBeDefined()
    }
    for (const [, delay] of definition.matchAll(/xstate\.after\.(\w+)\./g)) {
      expect(implementations.delays[delay ?? ''], delay).toBeDefined()
    }
  })

  it('loads with its default implementations, as in the Stately editor', () => {
    const machine = configureAuthMachine()
    const actor = createActor(machine).start()
    actor.send({ type: 'LOGIN', session: { accessToken: 'a' } })
    expect(actor.getSnapshot().value).toEqual({ authenticated: 'fresh' })
    expect(JSON.parse(JSON.stringify(actor.getSnapshot().context))).toEqual(
      actor.getSnapshot().context,
    )
    actor.stop()
  })
})
