import type { Actor, SnapshotFrom } from 'xstate'
import type { AuthMachine } from '../machines/authMachine.js'
import type { AuthErrorInfo, QueuedRequest } from '../machines/types.js'
import { AuthError, errorFromInfo, LoggedOutError, SessionExpiredError } from './errors.js'

/**
 * A URL as the queue may show it (inspection, the visualizer): no query string (the app's
 * data), no fragment, no userinfo (a password).
 */
export function redactUrl(url: string): string {
  try {
    // Parsed as the transports' URL parser reads it (spaces, tabs, extra slashes and all).
    const parsed = new URL(url)
    parsed.username = ''
    parsed.password = ''
    parsed.search = ''
    parsed.hash = ''
    return parsed.href
  } catch {
    // Relative: only a network-path reference (`//host`) has an authority of its own.
    const path = url.split(/[?#]/, 1)[0] ?? ''
    return path.replace(/^(\s*[/\\]{2})[^/\\]*@/, '$1')
  }
}

/** What {@link RequestQueue.hold} returns for one request on the wire. */
export interface HeldRequest {
  signal: AbortSignal
  release(): void
}

/** A request as the queue describes it: method and URL, never headers or body. */
export interface RequestDescription {
  method: string
  url: string
}

/** The token a request goes out with, and the session (epoch) and token (generation) it is. */
export interface Grant {
  token: string
  generation: number
  epoch: number
  /** The sign-in the token belongs to (`Session.id`): whose DPoP key signs its proofs. */
  session?: string | undefined
}

/**
 * How a transport tells the queue a request was aborted: subscribe with `onAbort`, get a
 * function that unsubscribes. `error` is what the waiting request rejects with (axios'
 * `CanceledError`, fetch's `signal.reason`).
 */
export interface AbortSource {
  aborted(): boolean
  onAbort(listener: () => void): () => void
  error(): unknown
}

interface Waiter {
  resolve(): void
  reject(error: unknown): void
  abort: AbortSource | undefined
}

/**
 * Every request waiting for a token, in one place: the promise each caller awaits lives here,
 * keyed by the queue id the machine knows it by. The machine decides (release, reject); this
 * only settles, each id exactly once, and after `dispose()` settles everything at once.
 */
export function createRequestQueue(
  actor: Actor<AuthMachine>,
  now: () => number,
  ready: Promise<void>,
) {
  const waiting = new Map<string, Waiter>()
  // User callbacks being waited for (see `guard`), settled at once by dispose().
  const guards = new Set<(error: AuthError) => void>()
  let sequence = 0
  let disposed: AuthError | undefined
  // Requests that start before the stored session is restored wait for it, or for dispose().
  let restored = false
  let onDispose: (error: AuthError) => void = () => undefined
  const disposal = new Promise<never>((_, reject) => {
    onDispose = reject
  })
  disposal.catch(() => undefined)
  const restoring = Promise.race([ready, disposal]).then(() => {
    restored = true
  })
  restoring.catch(() => undefined)

  const settle = (ids: readonly string[], outcome: (waiter: Waiter) => void) => {
    for (const id of ids) {
      const waiter = waiting.get(id)
      if (!waiter) continue
      waiting.delete(id)
      outcome(waiter)
    }
  }
  const rejection = (error: AuthErrorInfo, waiter: Waiter) =>
    error.code === 'CANCELED' && waiter.abort ? waiter.abort.error() : errorFromInfo(error)
  actor.on('requestsReleased', ({ ids }) => settle(ids, (w) => w.resolve()))
  actor.on('requestsRejected', ({ ids, error }) =>
    settle(ids, (w) => w.reject(rejection(error, w))),
  )

  /** Sends the event for a new queue entry and waits for the machine to settle it. */
  async function wait(
    description: RequestDescription,
    abort: AbortSource | undefined,
    send: (request: QueuedRequest) => void,
  ): Promise<void> {
    if (disposed) throw disposed
    if (abort?.aborted()) throw abort.error()
    sequence += 1
    const request: QueuedRequest = {
      id: String(sequence),
      method: description.method,
      url: description.url,
      enqueuedAt: now(),
    }
    // Registered before sending: the machine may settle the entry during `send` itself.
    const settled = new Promise<void>((resolve, reject) => {
      waiting.set(request.id, { resolve, reject, abort })
    })
    const stopListening = abort?.onAbort(() =>
      actor.send({ type: 'REQUEST_ABORTED', id: request.id }),
    )
    try {
      send(request)
      // An event the machine did not take (it changed state meanwhile) settles nothing: the
      // caller looks at the session again instead of waiting forever.
      if (waiting.has(request.id) && actor.getSnapshot().context.queue.at(-1)?.id !== request.id) {
        settle([request.id], (w) => w.resolve())
      }
      await settled
    } finally {
      stopListening?.()
    }
  }

  // What a request may go out with right now, kept current from the actor so the common
  // case (a usable token) costs no state lookup: the grant while authenticated, `null` when
  // signed out, `undefined` while requests must wait (refreshing).
  let current: Grant | null | undefined
  let expiresAt: number | undefined
  let liveEpoch: number | null = null
  // The requests on the wire with the live session's token, aborted when it ends.
  let session: { epoch: number; held: Set<AbortController> } | undefined
  const abortHeld = (reason: unknown) => {
    const held = session?.held
    session = undefined
    for (const controller of held ?? []) controller.abort(reason)
  }
  const endedError = () =>
    actor.getSnapshot().matches('expired')
      ? new SessionExpiredError()
      : new LoggedOutError('The session this request was sent in has ended.')
  const update = (snapshot: SnapshotFrom<AuthMachine>) => {
    const { session: live, generation, epoch } = snapshot.context
    expiresAt = live?.expiresAt
    liveEpoch = live ? epoch : null
    if (session && session.epoch !== liveEpoch) abortHeld(endedError())
    if (snapshot.matches('authenticated') && live) {
      current = { token: live.accessToken, generation, epoch, session: live.id }
    } else current = snapshot.matches('refreshing') ? undefined : null
  }
  update(actor.getSnapshot())
  actor.subscribe(update)
  const usable = () => expiresAt === undefined || now() < expiresAt

  return {
    /**
     * The token to send now without waiting: a grant, `null` when signed out, or `undefined`
     * when the caller must wait (refresh running, token past its expiry). Throws `DISPOSED`
     * once the client is disposed.
     */
    tryAcquire(): Grant | null | undefined {
      if (disposed) throw disposed
      if (!restored) return undefined
      if (current === undefined || current === null) return current
      return usable() ? current : undefined
    },

    /**
     * The token to send now, waiting while a refresh runs or the token is past its expiry;
     * `null` when signed out. Rejects with the machine's typed errors.
     */
    async acquire(description: RequestDescription, abort?: AbortSource): Promise<Grant | null> {
      // Waits for the stored session, or rejects at once when the request is aborted first.
      if (!restored) await this.guard(restoring, abort)
      // After one wait the token is taken as it is: a server that hands out already-expired
      // tokens must not turn every request into another refresh.
      let waitedIn: number | undefined
      for (;;) {
        if (disposed) throw disposed
        const grant = this.tryAcquire()
        if (grant !== undefined || (waitedIn !== undefined && current)) {
          const taken = grant ?? current ?? null
          // Released for one session, it never goes out with the next one's token: a logout
          // and a login can come between the release and this line.
          if (taken && waitedIn !== undefined && taken.epoch !== waitedIn) {
            throw new LoggedOutError('The session this request waited in has ended.')
          }
          return taken
        }
        waitedIn = actor.getSnapshot().context.epoch
        await wait(description, abort, (request) => actor.send({ type: 'TOKEN_NEEDED', request }))
      }
    },

    /**
     * Waits for `promise` (a user callback's answer), or rejects when the request is aborted
     * (with the abort's error) or the client disposed (`DISPOSED`), whichever comes first.
     */
    guard<T>(promise: Promise<T>, abort?: AbortSource): Promise<T> {
      if (disposed) return Promise.reject(disposed)
      if (abort?.aborted()) return Promise.reject(abort.error())
      // Not a race on `disposal`: that promise lives as long as the client, and each race
      // would leave a reaction on it. A settled guard leaves nothing behind.
      return new Promise<T>((resolve, reject) => {
        const stop = abort?.onAbort(() => finish(() => reject(abort.error())))
        const onDispose = (error: AuthError) => finish(() => reject(error))
        guards.add(onDispose)
        const finish = (outcome: () => void) => {
          guards.delete(onDispose)
          stop?.()
          outcome()
        }
        promise.then(
          (value) => finish(() => resolve(value)),
          (error: unknown) => finish(() => reject(error)),
        )
      })
    },

    /**
     * A signal for one request sent with a token of `epoch`: aborted when `caller` is, and
     * when that session ends (logout, expiry, another login) or the client is disposed, with
     * the matching error as its reason. A request held after its token was written (a slow
     * `fetch` wrapper or adapter) then never leaves with it. Call `release()` once the
     * request has settled. One controller per request, none shared: a shared signal would
     * collect a listener per request.
     */
    hold(epoch: number, caller?: AbortSignal | null): HeldRequest {
      const controller = new AbortController()
      if (disposed) controller.abort(disposed)
      else if (liveEpoch !== epoch) controller.abort(endedError())
      if (controller.signal.aborted) return { signal: controller.signal, release: () => undefined }
      if (!session || session.epoch !== epoch) session = { epoch, held: new Set() }
      const held = session.held
      held.add(controller)
      const follow = () => controller.abort(caller?.reason)
      if (caller?.aborted) follow()
      else caller?.addEventListener('abort', follow, { once: true })
      return {
        signal: controller.signal,
        release() {
          held.delete(controller)
          caller?.removeEventListener('abort', follow)
        },
      }
    },

    /**
     * Reports that the server rejected `grant` and waits until the request may be replayed:
     * at once for an outdated token, after the refresh for the current one. Rejects when the
     * grant's session has ended (another epoch): such a request is never replayed.
     */
    rejected(description: RequestDescription, grant: Grant, abort?: AbortSource): Promise<void> {
      return wait(description, abort, (request) =>
        actor.send({
          type: 'TOKEN_REJECTED',
          request,
          generation: grant.generation,
          epoch: grant.epoch,
        }),
      )
    },

    /**
     * Reports that a DPoP server asked `grant`'s request for a nonce (and sent one), and waits
     * until it may go out again: at once while its session lives on. Never a refresh.
     */
    nonceChallenged(
      description: RequestDescription,
      grant: Grant,
      abort?: AbortSource,
    ): Promise<void> {
      return wait(description, abort, (request) =>
        actor.send({ type: 'NONCE_CHALLENGED', request, epoch: grant.epoch }),
      )
    },

    /** Settles every waiting request with `DISPOSED`, now and for any that comes later. */
    dispose(): void {
      disposed = new AuthError('The auth client was disposed.', 'DISPOSED')
      const error = disposed
      onDispose(error)
      abortHeld(error)
      for (const onDispose of [...guards]) onDispose(error)
      settle([...waiting.keys()], (w) => w.reject(error))
    },

    /** The `DISPOSED` error once `dispose()` ran, else `undefined`. */
    disposedError(): AuthError | undefined {
      return disposed
    },

    /** Whether `dispose()` ran. */
    isDisposed(): boolean {
      return disposed !== undefined
    },

    /** Whether a token of `epoch` still belongs to the current session (signed in, same epoch). */
    isLive(epoch: number): boolean {
      return disposed === undefined && liveEpoch === epoch
    },
  }
}

export type RequestQueue = ReturnType<typeof createRequestQueue>
