import { CanceledError, type GenericAbortSignal } from 'axios'
import type { Actor, SnapshotFrom } from 'xstate'
import type { AuthMachine } from '../machines/authMachine.js'
import type { QueuedRequest } from '../machines/types.js'
import type { Waiters } from './waiters.js'

/** A request as the queue describes it: method and URL, never headers or body. */
export interface RequestDescription {
  method: string
  url: string
}

/** The token a request goes out with, and the generation it belongs to. */
export interface Grant {
  token: string
  generation: number
}

/**
 * Where requests meet the machine: hands out the current token, or queues the caller until
 * the machine releases or rejects it.
 */
export function createTokenGate(actor: Actor<AuthMachine>, waiters: Waiters, now: () => number) {
  let sequence = 0

  /** Sends `event` for a new queue entry and waits for the machine to settle it. */
  async function wait(
    description: RequestDescription,
    signal: GenericAbortSignal | undefined,
    send: (request: QueuedRequest) => void,
  ): Promise<void> {
    if (signal?.aborted) throw new CanceledError()
    sequence += 1
    const request: QueuedRequest = {
      id: String(sequence),
      method: description.method,
      url: description.url,
      enqueuedAt: now(),
    }
    // Registered before sending: the machine may settle the entry during `send` itself.
    const settled = waiters.add(request.id)
    const onAbort = () => actor.send({ type: 'REQUEST_ABORTED', id: request.id })
    signal?.addEventListener?.('abort', onAbort)
    try {
      send(request)
      await settled
    } finally {
      signal?.removeEventListener?.('abort', onAbort)
    }
  }

  // What a request may go out with right now, kept current from the actor so the common
  // case (a usable token) costs no state lookup: the grant while authenticated, `null`
  // when signed out, `undefined` while requests must wait (refreshing).
  let current: Grant | null | undefined
  let expiresAt: number | undefined
  const update = (snapshot: SnapshotFrom<AuthMachine>) => {
    const { session, generation } = snapshot.context
    expiresAt = session?.expiresAt
    if (snapshot.matches('authenticated') && session) {
      current = { token: session.accessToken, generation }
    } else current = snapshot.matches('refreshing') ? undefined : null
  }
  update(actor.getSnapshot())
  actor.subscribe(update)
  const usable = () => expiresAt === undefined || now() < expiresAt

  return {
    /**
     * The token to send now without waiting: a grant, `null` when signed out, or
     * `undefined` when the caller must wait (refresh running, token past its expiry).
     */
    tryAcquire(): Grant | null | undefined {
      if (current === undefined || current === null) return current
      return usable() ? current : undefined
    },

    /**
     * The token to send now, waiting while a refresh runs or the token is past its expiry;
     * `null` when signed out. Rejects with the machine's typed errors.
     */
    async acquire(
      description: RequestDescription,
      signal?: GenericAbortSignal,
    ): Promise<Grant | null> {
      // After one wait the token is taken as it is: a server that hands out already-expired
      // tokens must not turn every request into another refresh.
      let waited = false
      for (;;) {
        const grant = this.tryAcquire()
        if (grant !== undefined) return grant
        if (waited && current) return current
        await wait(description, signal, (request) => actor.send({ type: 'TOKEN_NEEDED', request }))
        waited = true
      }
    },

    /**
     * Reports that the server rejected a token of `generation` and waits until a request
     * may be replayed: at once for an outdated token, after the refresh otherwise.
     */
    rejected(
      description: RequestDescription,
      generation: number,
      signal?: GenericAbortSignal,
    ): Promise<void> {
      return wait(description, signal, (request) =>
        actor.send({ type: 'TOKEN_REJECTED', request, generation }),
      )
    },
  }
}

export type TokenGate = ReturnType<typeof createTokenGate>
