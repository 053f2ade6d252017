import { useEffect, useState } from 'react'

/** The current time, re-read every `interval` ms (for countdowns and ages). */
export function useNow(interval = 250): number {
  const [now, setNow] = useState(() => Date.now())
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), interval)
    return () => clearInterval(timer)
  }, [interval])
  return now
}

/** `1234` → `1.2 s`, `-500` → `-0.5 s`. */
export function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`
}
