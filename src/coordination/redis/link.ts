import { errorName } from '../../errors.js'

/**
 * The parts of a node-redis client (`redis` 4 to 6, `createClient()`) the driver uses. Pass
 * your own client as `client`: the driver connects it if needed, never closes it, and opens a
 * `duplicate()` of it for pub/sub.
 */
export interface RedisClientLike {
  readonly isOpen: boolean
  readonly isReady: boolean
  connect(): Promise<unknown>
  sendCommand(args: ReadonlyArray<string>): Promise<unknown>
  subscribe(channel: string, listener: (message: string, channel: string) => void): Promise<unknown>
  duplicate(): RedisClientLike
  on(event: string, listener: (...args: unknown[]) => void): unknown
  off(event: string, listener: (...args: unknown[]) => void): unknown
  destroy?(): void
  disconnect?(): Promise<unknown>
}

/** Redis did not answer in time, could not be reached, or refused: the caller goes on in-process. */
export class Unavailable extends Error {
  override readonly name = 'Unavailable'
}

// Error replies that mean "Redis is there but cannot serve now": treated as an outage.
const PASSING = new Set(['LOADING', 'BUSY', 'MASTERDOWN', 'CLUSTERDOWN', 'TRYAGAIN', 'READONLY'])

/**
 * The code of a Redis error reply (`NOPERM`, `WRONGTYPE`, …), or `undefined` for anything
 * else (a network error, a timeout). node-redis' `ErrorReply` carries the server's message.
 */
function replyCode(error: unknown): string | undefined {
  if (!(error instanceof Error)) return undefined
  const kind = error.constructor?.name
  const code = /^([A-Z]{3,})\b/.exec(error.message)?.[1]
  if (kind === 'ErrorReply' || kind === 'SimpleError' || kind === 'BlobError') return code ?? 'ERR'
  return undefined
}

export interface LinkOptions {
  /** A client to borrow, or a factory for the client the link owns. */
  client: RedisClientLike
  owned: boolean
  /** How long one command may take before Redis counts as unavailable. */
  timeout: number
  warn(message: string): void
  /** Redis answers again after an outage. */
  recovered(): void
  /** A message on the channel. */
  message(raw: string): void
  channel: string
}

/**
 * The driver's connection to Redis: commands bounded in time, one warning per outage and
 * one on recovery (reconnect attempts are silent), and the subscription for the channel.
 */
export function createLink(options: LinkOptions) {
  const { client, owned, timeout, warn, channel } = options
  let down = false
  let closed = false
  const refusals = new Set<string>()
  const subscriber = client.duplicate()

  const outage = (error: unknown): Unavailable => {
    if (!down && !closed) {
      down = true
      warn(
        `Redis is unavailable (${errorName(error)}); refreshing in this process alone until it is back.`,
      )
    }
    return error instanceof Unavailable ? error : new Unavailable('Redis is unavailable.')
  }
  const back = () => {
    if (!down || closed) return
    down = false
    warn('Redis is reachable again; the session is shared across processes once more.')
    options.recovered()
  }

  // Without a listener an 'error' event would crash the process; reconnects are reported once.
  const onError = (error: unknown) => {
    if (!client.isReady) outage(error)
  }
  const onReady = () => back()
  client.on('error', onError)
  client.on('ready', onReady)
  subscriber.on('error', () => undefined)
  // Messages lost while the subscriber was away are caught up by reading the record.
  let subscribed = false
  subscriber.on('ready', () => {
    if (subscribed) options.recovered()
  })

  const connect = (c: RedisClientLike) => c.connect().catch(() => undefined)
  if (!client.isOpen) void connect(client)
  const subscription = connect(subscriber)
    .then(() => subscriber.subscribe(channel, (message) => options.message(message)))
    .then(() => {
      subscribed = true
      // What was written before the subscription took effect is read now.
      options.recovered()
    })
    .catch(() => undefined)

  /** Waits for the client's first connection, at most until `deadline`. */
  const connected = (deadline: number): Promise<boolean> =>
    new Promise((resolve) => {
      if (client.isReady) return resolve(true)
      const timer = setTimeout(() => finish(false), Math.max(0, deadline - Date.now()))
      const finish = (ready: boolean) => {
        clearTimeout(timer)
        client.off('ready', onConnected)
        resolve(ready)
      }
      const onConnected = () => finish(true)
      client.on('ready', onConnected)
    })

  return {
    get down() {
      return down
    },
    /** Resolves once the channel is subscribed, or after `ms` (Redis away): news is not missed. */
    listening(ms: number): Promise<void> {
      let timer: ReturnType<typeof setTimeout> | undefined
      const late = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, ms)
      })
      return Promise.race([subscription, late]).finally(() => clearTimeout(timer))
    },
    /** Runs one command; rejects with {@link Unavailable} when Redis cannot answer in time. */
    async command(args: string[]): Promise<unknown> {
      if (closed) throw new Unavailable('The coordinator is closed.')
      const deadline = Date.now() + timeout
      // Before the first connection, or while reconnecting outside a declared outage, the
      // client gets its time; in a declared outage the refresh does not wait for it.
      if (!client.isReady && (down || !(await connected(deadline)))) {
        throw outage(new Unavailable('not connected'))
      }
      let timer: ReturnType<typeof setTimeout> | undefined
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Unavailable('timed out')), deadline - Date.now())
      })
      try {
        const reply = await Promise.race([client.sendCommand(args), late])
        back()
        return reply
      } catch (error) {
        const code = replyCode(error)
        if (code === undefined || PASSING.has(code)) throw outage(error)
        // Redis answered, with a refusal that will not pass by itself (an ACL, a key of
        // another type): said once per kind, not taken for an outage.
        if (!refusals.has(code)) {
          refusals.add(code)
          warn(
            `Redis refused \`${args[0]}\` (${code}); refreshing in this process alone. Check the ACL user (see the README's Node services section) and that the key is not used by anything else.`,
          )
        }
        throw new Unavailable('refused')
      } finally {
        clearTimeout(timer)
      }
    },
    close(): void {
      closed = true
      client.off('error', onError)
      client.off('ready', onReady)
      subscriber.destroy?.() ?? void subscriber.disconnect?.().catch(() => undefined)
      if (owned) client.destroy?.() ?? void client.disconnect?.().catch(() => undefined)
    },
  }
}

export type Link = ReturnType<typeof createLink>
