// Belt and braces for "never show a token": besides redacting secret-named fields, every token
// this page has ever received is remembered and scrubbed from any text or inspector payload.

const SECRET_KEY = /token|authorization|password|secret/i
export const REDACTED = '[redacted]'

const known: string[] = []

/** Remembers the tokens of a login or refresh response. */
export function rememberTokens(body: unknown): void {
  if (typeof body !== 'object' || body === null) return
  for (const [key, value] of Object.entries(body)) {
    if (SECRET_KEY.test(key) && typeof value === 'string' && value.length >= 8) known.push(value)
  }
  // Old tokens stay dangerous after rotation, but the list must not grow without bound.
  if (known.length > 200) known.splice(0, known.length - 200)
}

/** `text` with every known token replaced. */
export function scrub(text: string): string {
  let clean = text
  for (const token of known) if (clean.includes(token)) clean = clean.split(token).join(REDACTED)
  return clean
}

/**
 * A JSON-safe copy of `value` with secret-named string fields redacted and known tokens
 * scrubbed from every string. Functions are dropped, cycles and very deep nesting cut short.
 */
export function sanitize(value: unknown, maxDepth = 12): unknown {
  const ancestors: object[] = []
  function walk(item: unknown, key: string, depth: number): unknown {
    if (typeof item === 'string') return SECRET_KEY.test(key) ? REDACTED : scrub(item)
    if (typeof item === 'number' || typeof item === 'boolean' || item === null) return item
    if (typeof item !== 'object') return undefined
    if (ancestors.includes(item)) return '[circular]'
    if (depth > maxDepth) return '[…]'
    const toJSON = (item as { toJSON?: unknown }).toJSON
    if (typeof toJSON === 'function') {
      const json: unknown = toJSON.call(item)
      if (json !== item) return walk(json, key, depth)
    }
    ancestors.push(item)
    try {
      if (Array.isArray(item)) return item.map((entry) => walk(entry, key, depth + 1) ?? null)
      const copy: Record<string, unknown> = {}
      for (const [childKey, child] of Object.entries(item)) {
        const clean = walk(child, childKey, depth + 1)
        if (clean !== undefined) copy[childKey] = clean
      }
      return copy
    } finally {
      ancestors.pop()
    }
  }
  return walk(value, '', 0)
}
