import type { Session } from '../../../machines/types.js'
import { parseStoredSession } from '../../session.js'
import type { Cipher } from './cipher.js'

/** The shared record as this process reads it: times converted to its own clock. */
export type SharedRecord =
  | { version: number; kind: 'session'; reason: 'login' | 'refresh'; session: Session }
  /** `id`: the sign-in that ended, when known: no session of it is taken again. */
  | { version: number; kind: 'ended'; id?: string }
  /** A record that is there (its version counts) but cannot be read: another secret, or garbage. */
  | { version: number; kind: 'unreadable' }

/**
 * A session as stored: times as durations relative to the write, which Redis stamps on its own
 * clock. Hosts' clocks never meet: each reader adds the age Redis measured to its own now.
 */
interface StoredSession {
  a: string
  r?: string
  i?: string
  /** ms from the write until the access token expires. */
  e?: number
  /** ms from obtaining the access token until the write. */
  o?: number
}

export function encodeSession(session: Session, now: number): string {
  const stored: StoredSession = { a: session.accessToken }
  if (session.refreshToken !== undefined) stored.r = session.refreshToken
  if (session.id !== undefined) stored.i = session.id
  if (session.expiresAt !== undefined) stored.e = session.expiresAt - now
  if (session.obtainedAt !== undefined) stored.o = Math.max(0, now - session.obtainedAt)
  return JSON.stringify(stored)
}

function decodeSession(data: string, age: number, now: number): Session | null {
  let stored: Partial<Record<keyof StoredSession, unknown>>
  try {
    stored = JSON.parse(data)
  } catch {
    return null
  }
  if (typeof stored !== 'object' || stored === null) return null
  const { a, r, i, e, o } = stored
  if (e !== undefined && typeof e !== 'number') return null
  if (o !== undefined && typeof o !== 'number') return null
  return parseStoredSession({
    accessToken: a,
    refreshToken: r,
    id: i,
    expiresAt: e === undefined ? undefined : now + e - age,
    obtainedAt: o === undefined ? undefined : now - o - age,
  })
}

/** What binds sealed data to its place: a ciphertext moved to another key, version or kind fails. */
export function sealContext(recordKey: string, version: number, kind: 's' | 'e'): string {
  return `${recordKey}|${version}|${kind}`
}

/** The READ script's reply as a record; `undefined` when there is none. */
export function parseRecord(
  reply: unknown,
  recordKey: string,
  cipher: Cipher | undefined,
  now: number,
): SharedRecord | undefined {
  if (!Array.isArray(reply)) return { version: 0, kind: 'unreadable' }
  const [seconds, micros, v, k, d, t, r, i] = reply.map((field) => String(field ?? ''))
  if (!v) return undefined
  const version = Number(v)
  // Not a version this library writes: unreadable, and overwritten by the next write.
  if (!/^[0-9]{1,15}$/.test(v)) return { version: 0, kind: 'unreadable' }
  if (k === 'e') return i ? { version, kind: 'ended', id: i } : { version, kind: 'ended' }
  const redisNow = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000)
  // In whole seconds, as `expires_in` is: a record read right after its write is taken as it
  // was written, exactly, and only a record that sat in Redis ages.
  const age = Math.floor(Math.max(0, redisNow - Number(t)) / 1000) * 1000
  const data = cipher ? cipher.open(d ?? '', sealContext(recordKey, version, 's')) : d
  const session = k === 's' && data !== undefined ? decodeSession(data, age, now) : null
  if (!session || !Number.isFinite(age)) return { version, kind: 'unreadable' }
  return { version, kind: 'session', reason: r === 'l' ? 'login' : 'refresh', session }
}
