import type { Actor, SnapshotFrom } from 'xstate'
import type { AuthMachine } from '../machines/authMachine.js'
import type { AuthErrorInfo, QueuedRequest } from '../machines/types.js'
import { AuthError, errorFromInfo } from './errors.js'

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

  /** Waits for the stored session, or rejects at once when the request is aborted first. */
  function untilRestored(abort: AbortSource | undefined): Promise<void> {
    if (!abort) return restoring
    if (abort.aborted()) return Promise.reject(abort.error())
    let stop: () => void = () => undefined
    const aborted = new Promise<never>((_, reject) => {
      stop = abort.onAbort(() => reject(abort.error()))
    })
    return Promise.race([restoring, aborted]).finally(() => stop())
  }

  // What a request may go out with right now, kept current from the actor so the common
  // case (a usable token) costs no state lookup: the grant while authenticated, `null` when
  // signed out, `undefined` while requests must wait (refreshing).
  let current: Grant | null | undefined
  let expiresAt: number | undefined
  let liveEpoch: number | null = null
  const update = (snapshot: SnapshotFrom<AuthMachine>) => {
    const { session, generation, epoch } = snapshot.context
    expiresAt = session?.expiresAt
    liveEpoch = session ? epoch : null
    if (snapshot.matches('authenticated') && session) {
      current = { token: session.accessToken, generation, epoch }
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
      if (!restored) await untilRestored(abort)
      // After one wait the token is taken as it is: a server that hands out already-expired
      // tokens must not turn every request into another refresh.
      let waited = false
      for (;;) {
        if (disposed) throw disposed
        const grant = this.tryAcquire()
        if (grant !== undefined) return grant
        if (waited && current) return current
        await wait(description, abort, (request) => actor.send({ type: 'TOKEN_NEEDED', request }))
        waited = true
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

    /** Settles every waiting request with `DISPOSED`, now and for any that comes later. */
    dispose(): void {
      disposed = new AuthError('The auth client was disposed.', 'DISPOSED')
      const error = disposed
      onDispose(error)
      settle([...waiting.keys()], (w) => w.reject(error))
    },

    /** Whether a token of `epoch` still belongs to the current session (signed in, same epoch). */
    isLive(epoch: number): boolean {
      return liveEpoch === epoch
    },
  }
}

export type RequestQueue = ReturnType<typeof createRequestQueue>
