// A virtual wall clock for the benchmark processes that need time to pass: `Date.now()` is
// shifted by `advance(ms)`, for every library and the backend alike (they all read
// `Date.now()`), while timers and `performance.now()` keep real time. "The laptop slept
// for 31 minutes" takes no time at all.

const realNow = Date.now.bind(Date)
let offset = 0

export function installVirtualClock() {
  Date.now = () => realNow() + offset
}

/** Moves the wall clock forward by `ms`. */
export function advance(ms) {
  offset += ms
}
