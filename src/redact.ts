/** Property names whose values are secrets, whatever object they sit in. */
const SECRET_KEY = /token|authorization|password|secret/i

export const REDACTED = '[redacted]'

function isPlainObject(value: object): boolean {
  const proto = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}

/**
 * A copy of `value` with every secret-named property replaced by `[redacted]`. Only plain
 * objects and arrays are copied; class instances (actor refs, machines) are passed through,
 * which also keeps the walk finite on XState's cyclic structures.
 */
export function redact<T>(value: T, seen = new WeakMap<object, unknown>()): T {
  if (typeof value !== 'object' || value === null) return value
  if (seen.has(value)) return seen.get(value) as T
  if (Array.isArray(value)) {
    const copy: unknown[] = []
    seen.set(value, copy)
    for (const item of value) copy.push(redact(item, seen))
    return copy as T
  }
  if (!isPlainObject(value)) return value
  const copy: Record<string, unknown> = {}
  seen.set(value, copy)
  for (const [key, item] of Object.entries(value)) {
    copy[key] = SECRET_KEY.test(key) && item != null ? REDACTED : redact(item, seen)
  }
  return copy as T
}
