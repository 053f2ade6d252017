import { randomBytes } from 'node:crypto'
import type { Session } from '../../../machines/types.js'
import { errorName } from '../../errors.js'
import {
  type Coordination,
  type CoordinatorContext,
  type CoordinatorMessage,
  EndedElsewhere,
} from '../types.js'
import type { Cipher } from './cipher.js'
import { createLink, type Link, type RedisClientLike, Unavailable } from './link.js'
import { createLocks, type Lock } from './lock.js'
import { encodeSession, parseRecord, type SharedRecord, sealContext } from './record.js'
import { READ, WRITE } from './scripts.js'

/** What this process believes the shared record says: the version of what it holds. */
interface Known {
  version: number
  kind: 'session' | 'ended' | 'none'
  /** The access token of that version, to tell whether a session passed in is that one. */
  accessToken?: string
  /** The sign-in of that session, or of the session that ended: its end is written with it. */
  id?: string
}

type Verdict = { adopt: Session } | { ended: true } | undefined

/** The lock expired before the call went out (this process was paused): no call is sent. */
class LockLost extends Error {}

type Entry =
  | { kind: 'session'; reason: 'login' | 'refresh'; session: Session }
  | { kind: 'ended'; id?: string }

export interface DriverSettings {
  key: string
  lockTtl: number
  cipher: Cipher | undefined
  /** The client to use, and whether the driver made it (and so closes it). */
  client: Promise<RedisClientLike>
  owned: boolean
}

const sameSignIn = (a: Session, b: Session | null) =>
  b !== null && a.id !== undefined && a.id === b.id

/** The Redis driver at work for one client; see `redisCoordinator`. */
export function openRedis(context: CoordinatorContext, settings: DriverSettings): Coordination {
  const { key, lockTtl, cipher } = settings
  const recordKey = `${key}:record`
  const channel = `${key}:events`
  const me = randomBytes(8).toString('hex')
  const { now, warn, refreshTimeout } = context
  let known: Known = { version: 0, kind: 'none' }
  let closed = false
  let warnedUnreadable = false

  const linked: Promise<Link> = settings.client.then((client) =>
    createLink({
      client,
      owned: settings.owned,
      timeout: refreshTimeout,
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

  const command = async (args: string[], deadline?: number): Promise<unknown> => {
    const link = await linked.catch(() => {
      throw new Unavailable('no client')
    })
    return link.command(args, deadline)
  }

  const locks = createLocks({
    command,
    lockKey: `${key}:lock`,
    channel,
    lockTtl,
    patience: 2 * refreshTimeout,
    warn,
  })

  async function read(deadline?: number): Promise<SharedRecord | undefined> {
    const reply = await command(['EVAL', READ, '1', recordKey], deadline)
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
    const args = ['EVAL', WRITE, '1', recordKey, String(version), kind, data, reason, channel]
    let written: number
    try {
      written = Number(await command([...args, me, id]))
    } catch (error) {
      if (error instanceof Unavailable) believe(version, record)
      throw error
    }
    // An end may be written above the version asked for: it outranks its sign-in's sessions.
    if (written > 0) believe(written, record)
    return written > 0
  }

  /** The version of `session` as far as this process knows; 0 when it does not know it. */
  const versionOf = (session: Session | null) =>
    session && known.kind === 'session' && known.accessToken === session.accessToken
      ? known.version
      : 0

  /**
   * Whether a record's session replaces `current`. By version when this process knows the
   * version of what it holds; otherwise (a session restored from its own storage) a session
   * of the same sign-in only when it was obtained no earlier, so that an older one, whose
   * refresh token may be spent, is never taken over a newer one.
   */
  function replaces(record: SharedRecord, current: Session | null): boolean {
    if (record.kind !== 'session' || record.session.accessToken === current?.accessToken) {
      return false
    }
    const mine = versionOf(current)
    if (record.version <= mine) return false
    if (mine > 0 || !current || !sameSignIn(record.session, current)) return true
    return (record.session.obtainedAt ?? 0) >= (current.obtainedAt ?? 0)
  }

  /**
   * Whether a record ends `current`: the end of its very sign-in, or an end no older than
   * its version. A session whose version this process does not know (from its own storage)
   * is ended only by the end of its sign-in.
   */
  function ends(record: SharedRecord, current: Session | null): boolean {
    if (record.kind !== 'ended' || !current) return false
    if (record.id !== undefined && record.id === current.id) return true
    const mine = versionOf(current)
    return mine > 0 && record.version >= mine
  }

  /** What a record means for `current`: a newer session to adopt (believed), an end, or nothing. */
  function judge(record: SharedRecord | undefined, current: Session | null): Verdict {
    if (!record || record.kind === 'unreadable') return undefined
    if (ends(record, current)) {
      believe(record.version, record)
      return { ended: true }
    }
    if (!replaces(record, current) || record.kind !== 'session') return undefined
    believe(record.version, record)
    return { adopt: record.session }
  }

  /** Hands a record newer than what this process knows to the machine. */
  function take(record: SharedRecord | undefined): void {
    if (closed || !record || record.kind === 'unreadable') return
    const current = context.current()
    // At the same version an end wins over its own sign-in's session, and a session of another
    // sign-in over an end (the end was not of it).
    const tie =
      record.version === known.version &&
      (record.kind === 'ended'
        ? known.kind === 'session'
        : known.kind === 'ended' && record.session.id !== known.id)
    const newer = record.version > known.version || tie
    if (record.kind === 'ended') {
      if (current ? !ends(record, current) : !newer) return
      believe(record.version, record)
      if (current) context.deliver({ type: 'ended' })
      return
    }
    if (!newer || !replaces(record, current)) return
    // A newer record of the sign-in held here (or last held, when its refresh was refused)
    // is its refresh, which the machine still checks is newer; of any other sign-in, a
    // login, whatever the writer called it.
    const ofHeld = current
      ? sameSignIn(record.session, current)
      : known.kind === 'session' &&
        record.session.id !== undefined &&
        record.session.id === known.id
    believe(record.version, record)
    const reason = ofHeld ? 'refresh' : 'login'
    context.deliver({ type: 'session', reason, session: record.session })
  }

  function onMessage(raw: string): void {
    locks.wake()
    let news: { v?: unknown; from?: unknown }
    try {
      news = JSON.parse(raw)
    } catch {
      return
    }
    if (news.from === me || typeof news.v !== 'number') return
    if (news.v < known.version) return
    void serial(async () => take(await read()))
  }

  // Every read-and-act on the record runs in turn, in call order: a login written here, the
  // news of another process's write, a resync. Interleaved, a process could end up holding
  // one login while the record holds another.
  // Nothing is taken before the client has started with what restore() gave it (the next
  // turn of the event loop): until then the machine holds nothing to weigh a record against.
  let markStarted: () => void = () => undefined
  const started = new Promise<void>((resolve) => {
    markStarted = () => setImmediate(resolve)
  })
  let queue: Promise<void> = Promise.resolve()
  function serial(step: () => Promise<void>): Promise<void> {
    const run = queue.then(() => started).then(() => (closed ? undefined : step()))
    queue = run.catch(() => undefined)
    return run
  }

  /** After an outage: put back what only this process knows, or take what Redis has. */
  function resync(): Promise<void> {
    return serial(async () => {
      await locks.releaseOrphans()
      const record = await read()
      const current = context.current()
      // What this process put in during the outage goes back: its logout, or the session
      // it holds. A session it lost by itself (its refresh refused) ends nobody else's.
      const mine: Entry | undefined =
        known.kind === 'ended'
          ? { kind: 'ended' }
          : known.kind === 'session' && current
            ? { kind: 'session', reason: 'refresh', session: current }
            : undefined
      const behind =
        !record ||
        record.kind === 'unreadable' ||
        record.version < known.version ||
        (mine?.kind === 'ended' &&
          record.kind === 'session' &&
          (record.session.id === known.id ||
            (record.version === known.version && known.id === undefined)))
      if (!behind || !mine) return take(record)
      if (!(await write(Math.max(known.version, record?.version ?? 0), mine))) take(await read())
    }).catch(() => undefined) // still unavailable: the next recovery tries again
  }

  /** Writes a login or logout made here as the newest record. */
  async function announce(message: CoordinatorMessage): Promise<void> {
    // A process that never held a session (one that cannot read the record, say) ends
    // nobody's: its logout is its own.
    if (message.type === 'ended' && known.kind === 'none') return
    // Overtaken while queued or retried (a later login, or a session adopted from Redis
    // meanwhile): what this process holds now is announced by itself, or is in Redis already.
    const overtaken = () => {
      const held = context.current()
      return message.type === 'ended'
        ? held !== null
        : held?.accessToken !== message.session.accessToken
    }
    const record: Entry =
      message.type === 'ended'
        ? { kind: 'ended' }
        : { kind: 'session', reason: message.reason, session: message.session }
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

  /** The session to start with: the stored one weighed against the shared record. */
  async function restore(stored: Session | null, deadline: number): Promise<Session | null> {
    try {
      // Subscribed first: a record written after this read still reaches this process.
      await (await linked).listening(deadline)
      const record = await read(deadline)
      if (!record || record.kind === 'unreadable') return stored
      // The process's own storage against the shared record, as a refresh would weigh it.
      const verdict = judge(record, stored)
      if (verdict) return 'ended' in verdict ? null : verdict.adopt
      // Nothing stored, and the record an end: that is where this process starts from.
      if (!stored) believe(record.version, record)
      return stored
    } catch {
      // Unavailable: warned once; the process starts with what it has, and syncs on recovery.
      return stored
    }
  }

  /** Waits for the lock, or for a record that makes the refresh unnecessary. */
  async function turn(
    current: Session,
    signal: AbortSignal,
  ): Promise<Verdict | { lock: Lock; base: number }> {
    for (;;) {
      if (signal.aborted) throw signal.reason
      const lock = await locks.take()
      if (lock) {
        try {
          const record = await read()
          const verdict = judge(record, current)
          if (!verdict) return { lock, base: Math.max(record?.version ?? 0, known.version) }
          await lock.release()
          return verdict
        } catch (error) {
          await lock.release()
          throw error
        }
      }
      const verdict = judge(await read(), current)
      if (verdict) return verdict
      await locks.wait(signal)
    }
  }

  /**
   * The refresh under the lock; the result written for every process. Its lock is confirmed
   * right before the call: a process paused past the lock's time to live (a GC pause, a
   * suspended VM) does not spend the token another process may be spending now.
   */
  async function refreshHolding(
    held: { lock: Lock; base: number },
    current: Session,
    signal: AbortSignal,
    refresh: (confirm?: () => Promise<void>) => Promise<Session>,
    ended: () => void,
  ): Promise<Session> {
    try {
      const session = await refresh(async () => {
        if (!(await held.lock.held())) throw new LockLost()
      })
      // Written even when abandoned meanwhile: the refresh token in the record is spent.
      let written = true
      try {
        written = await write(held.base + 1, { kind: 'session', reason: 'refresh', session })
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
      await held.lock.release()
    }
  }

  return {
    async restore(stored) {
      // One deadline for the whole start: the subscription, then the read.
      const deadline = Date.now() + refreshTimeout
      if (stored) believe(0, { kind: 'session', reason: 'login', session: stored })
      try {
        return await restore(stored, deadline)
      } finally {
        markStarted()
      }
    },

    announce: (message) => serial(() => announce(message)),

    async refresh(current, _startedAt, signal, refresh, ended) {
      // A login announced here just before is the record the lock-time read compares with.
      await queue
      for (;;) {
        let outcome: Awaited<ReturnType<typeof turn>>
        try {
          outcome = await turn(current, signal)
        } catch (error) {
          if (!(error instanceof Unavailable)) throw error
          // Redis did not answer within refreshTimeout: this process refreshes alone.
          const session = await refresh()
          believe(known.version + 1, { kind: 'session', reason: 'refresh', session })
          return session
        }
        if (outcome && 'ended' in outcome) {
          ended()
          throw new EndedElsewhere('The session ended in another process.')
        }
        if (outcome && 'adopt' in outcome) return outcome.adopt
        if (!outcome) continue
        try {
          return await refreshHolding(outcome, current, signal, refresh, ended)
        } catch (error) {
          // The lock was gone before the call: another turn, which may find their session.
          if (!(error instanceof LockLost)) throw error
        }
      }
    },

    close() {
      closed = true
      markStarted()
      locks.wake()
      // Locks held by calls the close abandons are released first: no one waits out their TTL.
      const released = locks.releaseAll().catch(() => undefined)
      void linked.then(
        async (link) => {
          await released
          link.close()
        },
        () => undefined,
      )
    },
  }
}
