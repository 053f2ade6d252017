// Small statistics and formatting helpers shared by the benchmarks and the report.

export function median(values) {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b)
  if (sorted.length === 0) return Number.NaN
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

/** The `q` quantile (0–1) of the finite values, interpolated linearly between ranks. */
export function quantile(values, q) {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b)
  if (sorted.length === 0) return Number.NaN
  const rank = q * (sorted.length - 1)
  const low = Math.floor(rank)
  const high = Math.min(low + 1, sorted.length - 1)
  return sorted[low] + (sorted[high] - sorted[low]) * (rank - low)
}

/** `{ median, min, max, n }` of the finite values. */
export function summary(values) {
  const finite = values.filter((v) => Number.isFinite(v))
  return {
    median: median(finite),
    min: finite.length ? Math.min(...finite) : Number.NaN,
    max: finite.length ? Math.max(...finite) : Number.NaN,
    n: finite.length,
  }
}

/** A number with `digits` significant figures at most, thousands separated by a thin space. */
export function fmt(value, digits = 3) {
  if (value === null || value === undefined || Number.isNaN(value)) return '–'
  if (!Number.isFinite(value)) return String(value)
  const abs = Math.abs(value)
  const decimals =
    abs >= 10 ** digits ? 0 : Math.max(0, digits - 1 - Math.floor(Math.log10(abs || 1)))
  const fixed = value.toFixed(Math.min(decimals, 6))
  const [int, frac] = fixed.split('.')
  const grouped = int.replace(/\B(?=(\d{3})+(?!\d))/g, '\u202f')
  return frac ? `${grouped}.${frac}` : grouped
}

/** "median (min–max)" of a summary. */
export function range(s, digits = 3) {
  if (!s || s.n === 0) return '–'
  if (s.min === s.max) return fmt(s.median, digits)
  return `${fmt(s.median, digits)} (${fmt(s.min, digits)}–${fmt(s.max, digits)})`
}

/** Every value the same: that value; else "median (min–max)". For counts. */
export function counts(values) {
  const s = summary(values)
  if (s.n === 0) return '–'
  const f = (v) => (Number.isInteger(v) ? fmt(v, 1) : fmt(v, 3))
  return s.min === s.max ? f(s.min) : `${f(s.median)} (${f(s.min)}–${f(s.max)})`
}

/**
 * Waits for every promise to settle, at most `ms` (one timer for all). Returns how many were
 * fulfilled, rejected (with the distinct error names) and still unsettled ("hung"), and when
 * the last one settled (`performance.now()`).
 */
export async function settleAll(promises, ms) {
  const outcome = { fulfilled: 0, rejected: 0, hung: 0, errors: new Set(), lastAt: 0 }
  const tracked = promises.map((promise) =>
    promise.then(
      () => {
        outcome.fulfilled += 1
        outcome.lastAt = performance.now()
      },
      (error) => {
        outcome.rejected += 1
        outcome.errors.add(describeError(error))
        outcome.lastAt = performance.now()
      },
    ),
  )
  let timer
  const timeout = new Promise((resolve) => {
    timer = setTimeout(resolve, ms)
  })
  await Promise.race([Promise.all(tracked), timeout])
  clearTimeout(timer)
  outcome.hung = promises.length - outcome.fulfilled - outcome.rejected
  return { ...outcome, errors: [...outcome.errors] }
}

function describeError(error) {
  const status = error?.response?.status
  const name = error?.name ?? typeof error
  return status ? `${name} ${status}` : name
}
