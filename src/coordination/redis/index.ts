import { randomBytes } from 'node:crypto'
import type { Session } from '../../../machines/types.js'
import { AuthError, errorName } from '../../errors.js'
import {
  type Coordination,
  type Coordinator,
  type CoordinatorContext,
  type CoordinatorMessage,
  EndedElsewhere,
} from '../types.js'
import { type Cipher, createCipher } from './cipher.js'
import { createLink, type Link, type RedisClientLike, Unavailable } from './link.js'
import { encodeSession, parseRecord, type SharedRecord, sealContext } from './record.js'
import { READ, RELEASE, RENEW, WRITE } from './scripts.js'

export type { RedisClientLike } from './link.js'

/** Options of {@link redisCoordinator}. */
export interface RedisCoordinatorOptions {
  /** Where Redis is (`redis://…` or `rediss://…` for TLS). The driver owns this connection. */
  url?: string
  /** Or a node-redis client of the app's; connected if needed, never closed by the driver. */
  client?: RedisClientLike
  /**
   * Names the shared session: processes with the same `key` share it. Keys used:
   * `<key>:record`, `<key>:lock` and the channel `<key>:events`.
   */
  key: string
  /**
   * At least 32 bytes. Seals the record (AES-256-GCM, key derived with HKDF) so no token is
   * readable in Redis. Every process of the `key` needs the same secret.
   */
  secret?: string | Uint8Array
  /**
   * How long the refresh lock outlives a holder that died, in ms (at least 1 000). A live
   * holder renews it every third of it while its call is on the wire. Default 15 000.
   */
  lockTtl?: number
}

/** What this process believes the shared record says: the version of the session it holds. */
interface Known {
  version: number
  kind: 'session' | 'ended' | 'none'
  /** The access token of that version, to tell whether a session passed in is that one. */
  accessToken?: string
  /** The sign-in of that session, or of the session that ended: its end is written with it. */
  id?: string
}

type Verdict = { adopt: Session } | { ended: true } | undefined

type Entry =
  | { kind: 'session'; reason: 'login' | 'refresh'; session: Session }
  | { kind: 'ended'; id?: string }

/**
 * The Node driver: the processes of a service (a worker pool, a cluster, pods) share one
 * session through Redis. One refresh per expiry: a lock (`SET NX PX` with an owner token,
 * renewed while the call is on the wire, released by compare-and-delete); inside it the
 * shared record is read again and a newer session adopted instead of spending the refresh
 * token; the record is written by compare-and-set on its version (a holder whose lock expired
 * never overwrites a newer session); pub/sub tells the others. Redis down: each process
 * refreshes alone, with one warning per outage, and shares again when Redis is back.
 *
 * @throws {@link AuthError} `INVALID_OPTIONS` on a missing `key`, both or neither of `url`
 * and `client`, a `secret` under 32 bytes, or a `lockTtl` under 1 000 ms.
 */
export function redisCoordinator(options: RedisCoordinatorOptions): Coordinator {
  const { key, url, client } = options
  const lockTtl = options.lockTtl ?? 15_000
  const invalid = (message: string) =>
    new AuthError(`redisCoordinator: ${message}`, 'INVALID_OPTIONS')
  if (typeof key !== 'string' || key.length === 0)
    throw invalid('`key` must be a non-empty string.')
  if ((url === undefined) === (client === undefined))
    throw invalid('pass either `url` or `client`.')
  // Renewed every third of it: below a second the renewals would race their own round trips.
  if (!(Number.isFinite(lockTtl) && lockTtl >= 1_000))
    throw invalid('`lockTtl` must be a number of ms, at least 1000.')
  const cipher = options.secret === undefined ? undefined : createCipher(options.secret)
  return {
    open(context) {
      return openRedis(context, { key, lockTtl, cipher, client: client ?? null, url })
    },
  }
}

interface Settings {
  key: string
  lockTtl: number
  cipher: Cipher | undefined
  client: RedisClientLike | null
  url: string | undefined
}

async function ownClient(url: string): Promise<RedisClientLike> {
  const { createClient } = await import('redis')
  return createClient({
    url,
    // Commands fail at once while disconnected: the refresh runs in-process instead of queuing.
    disableOfflineQueue: true,
    socket: { reconnectStrategy: (retries: number) => Math.min(50 * 2 ** retries, 2_000) },
  }) as unknown as RedisClientLike
}

function openRedis(context: CoordinatorContext, settings: Settings): Coordination {
  const { key, lockTtl, cipher } = settings
  const recordKey = `${key}:record`
  const lockKey = `${key}:lock`
  const channel = `${key}:events`
  const me = randomBytes(8).toString('hex')
  const { now, warn } = context
  let known: Known = { version: 0, kind: 'none' }
  let closed = false
  let warnedUnreadable = false
  // Wakes lock waiters on any news of the channel.
  const waiters = new Set<() => void>()
  // Locks this process may hold without knowing it (a command that timed out but ran), or
  // could not release: released when Redis answers again, so no one waits out their TTL.
  const orphans = new Set<string>()

  const linked: Promise<Link> = (
    settings.client ? Promise.resolve(settings.client) : ownClient(settings.url as string)
  ).then((client) =>
    createLink({
      client,
      owned: settings.client === null,
      timeout: context.refreshTimeout,
      warn,
      channel,
      recovered: () => void resync(),
      message: onMessage,
    }),
  )
  // A client that cannot be made (node-redis not installed, a malformed url) is said once;
  // the process then refreshes alone, as in an outage. Never an unhandled rejection.
  linked.catch((error: unknown) => {
    const missing = (error as { code?: unknown })?.code === 'ERR_MODULE_NOT_FOUND'
    warn(
      missing
        ? 'redisCoordinator needs the `redis` package (node-redis 5 or 6): npm install redis. Refreshing in this process alone.'
        : `could not create the Redis client (${errorName(error)}); refreshing in this process alone.`,
    )
  })

  const command = async (args: string[]): Promise<unknown> => {
    const link = await linked.catch(() => {
      throw new Unavailable('no client')
    })
    return link.command(args)
  }

  async function read(): Promise<SharedRecord | undefined> {
    const reply = await command(['EVAL', READ, '1', recordKey])
    const record = parseRecord(reply, recordKey, cipher, now())
    if (record?.kind === 'unreadable' && !warnedUnreadable) {
      warnedUnreadable = true
      warn(
        'the shared record in Redis could not be read (another `secret`, or not written by auth-machine); it is treated as absent.',
      )
    }
    return record
  }

  /** Takes `record` at `version` as what the shared record says (or will say once Redis is back). */
  function believe(version: number, record: Entry): void {
    const id = record.kind === 'ended' ? (record.id ?? known.id) : record.session.id
    known =
      record.kind === 'ended'
        ? { version, kind: 'ended' }
        : { version, kind: 'session', accessToken: record.session.accessToken }
    if (id !== undefined) known.id = id
  }

  /**
   * Writes by compare-and-set and believes it; `false` when a newer (or ending) record was
   * there. In an outage ({@link Unavailable}) it is believed all the same: the recovery puts
   * it back.
   */
  async function write(version: number, record: Entry): Promise<boolean> {
    const kind = record.kind === 'ended' ? 'e' : 's'
    let data = ''
    if (record.kind === 'session') {
      const plain = encodeSession(record.session, now())
      data = cipher ? cipher.seal(plain, sealContext(recordKey, version, 's')) : plain
    }
    const reason = record.kind === 'session' && record.reason === 'login' ? 'l' : 'r'
    // The sign-in an end is for: the session this process held before it ended.
    const id = (record.kind === 'session' ? record.session.id : (record.id ?? known.id)) ?? ''
    const args = [
      'EVAL',
      WRITE,
      '1',
      recordKey,
      String(version),
      kind,
      data,
      reason,
      channel,
      me,
      id,
    ]
    let written: number
    try {
      written = Number(await command(args))
    } catch (error) {
      if (error instanceof Unavailable) believe(version, record)
      throw error
    }
    // An end may be written above the version asked for: it outranks its sign-in's sessions.
    if (written > 0) believe(written, record)
    return written > 0
  }

  const versionOf = (session: Session | null) =>
    session && known.kind === 'session' && known.accessToken === session.accessToken
      ? known.version
      : 0

  /** What a record means for `current`: a newer session to adopt (believed), an end, or nothing. */
  function judge(record: SharedRecord | undefined, current: Session | null): Verdict {
    if (!record || record.kind === 'unreadable') return undefined
    const mine = versionOf(current)
    if (record.kind === 'ended') {
      const endsMine =
        record.version > mine ||
        (record.version === mine && current !== null) ||
        (record.id !== undefined && record.id === current?.id)
      if (!current || !endsMine) return undefined
      believe(record.version, record)
      return { ended: true }
    }
    if (record.version > mine && record.session.accessToken !== current?.accessToken) {
      believe(record.version, record)
      return { adopt: record.session }
    }
    return undefined
  }

  /** Hands a record newer than what this process knows to the machine. */
  function take(record: SharedRecord | undefined): void {
    if (!record || record.kind === 'unreadable') return
    const endsHeld =
      record.kind === 'ended' && record.id !== undefined && record.id === context.current()?.id
    const newer =
      record.version > known.version ||
      (record.version === known.version && record.kind === 'ended' && known.kind === 'session') ||
      endsHeld
    if (!newer) return
    const first = known.kind === 'none'
    believe(record.version, record)
    if (record.kind === 'ended') {
      context.deliver({ type: 'ended' })
      return
    }
    // As recorded: the machine tells a refresh of its sign-in from a crossing one. Only the
    // first record a process sees (it started while Redis was away) is its sign-in, as
    // `restore()` would have given it, unless it is a refresh of the session held here.
    const current = context.current()
    const ours = current !== null && current.id === record.session.id
    const reason = first && !ours ? 'login' : record.reason
    context.deliver({ type: 'session', reason, session: record.session })
  }

  function onMessage(raw: string): void {
    for (const wake of waiters) wake()
    let news: { v?: unknown; from?: unknown }
    try {
      news = JSON.parse(raw)
    } catch {
      return
    }
    if (news.from === me || typeof news.v !== 'number') return
    if (news.v < known.version) return
    void pull()
  }

  let pulling: Promise<void> = Promise.resolve()
  /** Reads the record and takes it if it is newer; serialised so records arrive in order. */
  function pull(): Promise<void> {
    pulling = pulling.then(async () => {
      if (closed) return
      try {
        take(await read())
      } catch {
        // An outage: the recovery reads the record again.
      }
    })
    return pulling
  }

  /** After an outage: put back what only this process knows, or take what Redis has. */
  function resync(): Promise<void> {
    pulling = pulling.then(async () => {
      if (closed) return
      try {
        for (const owner of orphans) {
          await command(['EVAL', RELEASE, '1', lockKey, owner, channel])
          orphans.delete(owner)
        }
        const record = await read()
        const current = context.current()
        const ahead =
          !record ||
          record.kind === 'unreadable' ||
          record.version < known.version ||
          (known.kind === 'ended' &&
            record.kind === 'session' &&
            (record.version === known.version ||
              (known.id !== undefined && record.session.id === known.id)))
        // What this process put in during the outage goes back: its logout, or the session
        // it holds. A session it lost by itself (its refresh refused) ends nobody else's.
        const mine =
          known.kind === 'ended'
            ? ({ kind: 'ended' } as const)
            : known.kind === 'session' && current
              ? ({ kind: 'session', reason: 'refresh', session: current } as const)
              : undefined
        if (!ahead || !mine) return take(record)
        if (!(await write(Math.max(known.version, record?.version ?? 0), mine))) take(await read())
      } catch {
        // Still unavailable: the next recovery tries again.
      }
    })
    return pulling
  }

  /** Resolves on any channel message or after `ms`, or rejects when `signal` aborts. */
  const news = (ms: number, signal: AbortSignal) =>
    new Promise<void>((resolve, reject) => {
      const done = () => {
        clearTimeout(timer)
        waiters.delete(done)
        signal.removeEventListener('abort', abort)
        resolve()
      }
      const abort = () => {
        done()
        reject(signal.reason)
      }
      const timer = setTimeout(done, ms)
      waiters.add(done)
      signal.addEventListener('abort', abort, { once: true })
    })

  interface Lock {
    owner: string
    /** Stops renewing and releases the lock if this process still holds it. */
    release(): Promise<void>
  }

  function holdLock(owner: string): Lock {
    const renew = setInterval(() => {
      command(['EVAL', RENEW, '1', lockKey, owner, String(lockTtl)])
        .then((reply) => {
          // Lost (expired while Redis was slow): the version check keeps the write honest.
          if (Number(reply) === 0) clearInterval(renew)
        })
        .catch(() => undefined)
    }, lockTtl / 3)
    ;(renew as { unref?: () => void }).unref?.()
    return {
      owner,
      async release() {
        clearInterval(renew)
        await command(['EVAL', RELEASE, '1', lockKey, owner, channel]).catch(() => {
          orphans.add(owner)
        })
      },
    }
  }

  /** Waits for the lock, or for a record that makes the refresh unnecessary. */
  async function turn(
    current: Session,
    signal: AbortSignal,
  ): Promise<Verdict | { lock: Lock; base: number }> {
    for (;;) {
      if (signal.aborted) throw signal.reason
      const owner = randomBytes(16).toString('hex')
      let got: unknown
      try {
        got = await command(['SET', lockKey, owner, 'NX', 'PX', String(lockTtl)])
      } catch (error) {
        // Timed out, yet maybe run by a Redis that stalled: released once it answers again.
        orphans.add(owner)
        throw error
      }
      if (got === 'OK') {
        const lock = holdLock(owner)
        try {
          const record = await read()
          const verdict = judge(record, current)
          if (verdict) {
            await lock.release()
            return verdict
          }
          return { lock, base: Math.max(record?.version ?? 0, known.version) }
        } catch (error) {
          await lock.release()
          throw error
        }
      }
      const verdict = judge(await read(), current)
      if (verdict) return verdict
      const left = Number(await command(['PTTL', lockKey]))
      await news(Math.min(Math.max(left, 5), lockTtl), signal)
    }
  }

  let announced: Promise<void> = Promise.resolve()
  /** Writes a login or logout made here as the newest record. */
  async function announce(message: CoordinatorMessage): Promise<void> {
    // Overtaken while queued or retried (a later login, or a session adopted from Redis
    // meanwhile): what this process holds now is announced by itself, or is in Redis already.
    const overtaken = () => {
      const held = context.current()
      return message.type === 'ended'
        ? held !== null
        : held?.accessToken !== message.session.accessToken
    }
    const record =
      message.type === 'ended'
        ? ({ kind: 'ended' } as const)
        : ({ kind: 'session', reason: message.reason, session: message.session } as const)
    // Another process may write the same version at the same moment: read and try again.
    for (let tries = 0; tries < 5 && !overtaken(); tries += 1) {
      let base: number
      try {
        base = Math.max((await read())?.version ?? 0, known.version)
      } catch (error) {
        if (!(error instanceof Unavailable)) throw error
        // In an outage this process knows it first; the recovery puts it back.
        return believe(known.version + 1, record)
      }
      if (overtaken()) return
      try {
        if (await write(base + 1, record)) return
      } catch (error) {
        if (!(error instanceof Unavailable)) throw error
        return // believed by write()
      }
    }
  }

  return {
    async restore() {
      try {
        // Subscribed first: a record written after this read still reaches this process.
        await (await linked).listening(context.refreshTimeout)
        const record = await read()
        if (record?.kind === 'session') {
          known = {
            version: record.version,
            kind: 'session',
            accessToken: record.session.accessToken,
          }
          return record.session
        }
        if (record?.kind === 'ended') known = { version: record.version, kind: 'ended' }
      } catch {
        // Unavailable: warned once; the process starts signed out and adopts on recovery.
      }
      return undefined
    },

    announce(message: CoordinatorMessage) {
      // In call order: two logins in a row must leave the second one in the record.
      const done = announced.then(() => announce(message))
      announced = done.catch(() => undefined)
      return done
    },

    async refresh(current, _startedAt, signal, refresh, ended) {
      let held: { lock: Lock; base: number } | undefined
      // A login made here just before must be the record the lock-time read compares with.
      await announced
      try {
        const outcome = await turn(current, signal)
        if (outcome && 'lock' in outcome) held = outcome
        else if (outcome && 'ended' in outcome) {
          ended()
          throw new EndedElsewhere('The session ended in another process.')
        } else if (outcome) return outcome.adopt
      } catch (error) {
        if (!(error instanceof Unavailable)) throw error
        // Redis did not answer within refreshTimeout: this process refreshes alone.
        const session = await refresh()
        believe(known.version + 1, { kind: 'session', reason: 'refresh', session })
        return session
      }
      const { lock, base } = held as { lock: Lock; base: number }
      try {
        const session = await refresh()
        // Written even when abandoned meanwhile: the refresh token in the record is spent.
        let written = true
        try {
          written = await write(base + 1, { kind: 'session', reason: 'refresh', session })
        } catch (error) {
          if (!(error instanceof Unavailable)) throw error
        }
        if (signal.aborted) throw signal.reason
        if (written) return session
        // The lock was lost and someone wrote a newer record: theirs is the shared one.
        const verdict = judge(await read().catch(() => undefined), current)
        if (verdict && 'ended' in verdict) {
          ended()
          throw new EndedElsewhere('The session ended in another process.')
        }
        return verdict ? verdict.adopt : session
      } finally {
        await lock.release()
      }
    },

    close() {
      closed = true
      for (const wake of waiters) wake()
      void linked.then((link) => link.close()).catch(() => undefined)
    },
  }
}
