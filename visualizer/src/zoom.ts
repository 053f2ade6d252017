// Pan and zoom for the statechart. A wide screen shows the whole chart; on a narrow one
// (a phone) fitting it would draw its labels at 2 px, so there it starts (or, narrowed from a
// wide one, goes) to 100% in a scroll box. Buttons, Ctrl+wheel (also a trackpad pinch) and a
// two-finger pinch zoom around the point under the pointer; one finger or the scroll bars pan.
import { type RefObject, useCallback, useEffect, useLayoutEffect, useRef, useState } from 'react'

/** Below this fitted scale (labels under ~7 px) the chart starts at 100% instead of fitted. */
const MIN_OVERVIEW = 0.6
const MAX_SCALE = 3
const STEP = 1.25

export interface Box {
  x: number
  y: number
  width: number
  height: number
}

export interface Zoom {
  /** CSS pixels per chart unit; `null` until the viewport and the chart are both known. */
  scale: number | null
  /** Whether the scale follows the viewport's width (the whole chart in view). */
  fitted: boolean
  zoomIn(): void
  zoomOut(): void
  fit(): void
  actualSize(): void
  /** Scrolls the viewport so `box` (chart units) is in view, if it is not already. */
  reveal(box: Box): void
}

/** A chart point that stays under the same viewport point while the scale changes. */
interface Anchor {
  x: number
  y: number
  left: number
  top: number
}

export function useZoom(
  viewport: RefObject<HTMLDivElement | null>,
  size: { width: number; height: number } | null,
): Zoom {
  const [view, setView] = useState<{ scale: number; fitted: boolean } | null>(null)
  const current = useRef(view)
  current.current = view
  const anchor = useRef<Anchor | null>(null)

  const fitScale = useCallback(() => {
    const element = viewport.current
    return element && size ? Math.min(1, element.clientWidth / size.width) : 1
  }, [viewport, size])

  /** Zooms to `scale`, keeping the chart point under `at` (viewport pixels; default: centre). */
  const zoomTo = useCallback(
    (scale: number, at?: { left: number; top: number }) => {
      const element = viewport.current
      const now = current.current
      if (!element || !now) return
      const next = Math.min(MAX_SCALE, Math.max(fitScale(), scale))
      const left = at?.left ?? element.clientWidth / 2
      const top = at?.top ?? element.clientHeight / 2
      anchor.current = {
        x: (element.scrollLeft + left) / now.scale,
        y: (element.scrollTop + top) / now.scale,
        left,
        top,
      }
      setView({ scale: next, fitted: false })
    },
    [viewport, fitScale],
  )

  /** The whole chart in view, or 100% when that would draw it too small to read. */
  const overview = useCallback(() => {
    const fit = fitScale()
    return fit >= MIN_OVERVIEW ? { scale: fit, fitted: true } : { scale: 1, fitted: false }
  }, [fitScale])

  // The first view, once the chart is laid out and the viewport measured.
  useLayoutEffect(() => {
    if (!size || !viewport.current || current.current) return
    setView(overview())
  }, [size, viewport, overview])

  // After a zoom is drawn, scroll so the anchored point is back under the pointer.
  useLayoutEffect(() => {
    const element = viewport.current
    const point = anchor.current
    if (!element || !point || !view) return
    anchor.current = null
    element.scrollLeft = point.x * view.scale - point.left
    element.scrollTop = point.y * view.scale - point.top
  }, [viewport, view])

  // A fitted chart follows the viewport's width, down to the same limit as the first view: a
  // desktop window narrowed to a phone's width switches to 100% rather than 2 px labels. Only
  // a change of width counts: the box's height follows the chart's, and an overview the reader
  // asked for (Fit on a phone) must not be undone by the chart shrinking into it.
  useEffect(() => {
    const element = viewport.current
    if (!element) return
    let width = element.clientWidth
    const observer = new ResizeObserver(() => {
      if (element.clientWidth === width) return
      width = element.clientWidth
      if (current.current?.fitted) setView(overview())
    })
    observer.observe(element)
    return () => observer.disconnect()
  }, [viewport, overview])

  // Ctrl+wheel, which is also what a trackpad pinch sends; a plain wheel scrolls as usual.
  useEffect(() => {
    const element = viewport.current
    if (!element) return
    const onWheel = (event: WheelEvent) => {
      const now = current.current
      if (!event.ctrlKey || !now) return
      event.preventDefault()
      const rect = element.getBoundingClientRect()
      zoomTo(now.scale * Math.exp(-event.deltaY / 300), {
        left: event.clientX - rect.left,
        top: event.clientY - rect.top,
      })
    }
    element.addEventListener('wheel', onWheel, { passive: false })
    return () => element.removeEventListener('wheel', onWheel)
  }, [viewport, zoomTo])

  // Two fingers pinch; the viewport's `touch-action: pan-x pan-y` leaves pinching to us.
  useEffect(() => {
    const element = viewport.current
    if (!element) return
    const touches = new Map<number, { x: number; y: number }>()
    let start: { distance: number; scale: number } | null = null
    const spread = () => {
      const [a, b] = [...touches.values()]
      if (!a || !b) return null
      const rect = element.getBoundingClientRect()
      return {
        distance: Math.hypot(a.x - b.x, a.y - b.y),
        left: (a.x + b.x) / 2 - rect.left,
        top: (a.y + b.y) / 2 - rect.top,
      }
    }
    const down = (event: PointerEvent) => {
      if (event.pointerType !== 'touch') return
      touches.set(event.pointerId, { x: event.clientX, y: event.clientY })
      const now = spread()
      start =
        now && current.current ? { distance: now.distance, scale: current.current.scale } : null
    }
    const move = (event: PointerEvent) => {
      if (!touches.has(event.pointerId)) return
      touches.set(event.pointerId, { x: event.clientX, y: event.clientY })
      const now = spread()
      if (start && now && start.distance > 0) {
        zoomTo(start.scale * (now.distance / start.distance), now)
      }
    }
    const up = (event: PointerEvent) => {
      touches.delete(event.pointerId)
      start = null
    }
    element.addEventListener('pointerdown', down)
    element.addEventListener('pointermove', move)
    element.addEventListener('pointerup', up)
    element.addEventListener('pointercancel', up)
    return () => {
      element.removeEventListener('pointerdown', down)
      element.removeEventListener('pointermove', move)
      element.removeEventListener('pointerup', up)
      element.removeEventListener('pointercancel', up)
    }
  }, [viewport, zoomTo])

  const reveal = useCallback(
    (box: Box) => {
      const element = viewport.current
      const now = current.current
      if (!element || !now || now.fitted) return
      const inView = (start: number, length: number, scroll: number, client: number) =>
        start * now.scale >= scroll && (start + length) * now.scale <= scroll + client
      const x = inView(box.x, box.width, element.scrollLeft, element.clientWidth)
      const y = inView(box.y, box.height, element.scrollTop, element.clientHeight)
      if (x && y) return
      const centre = (start: number, length: number, client: number) =>
        Math.max(0, (start + length / 2) * now.scale - client / 2)
      element.scrollTo({
        left: x ? element.scrollLeft : centre(box.x, box.width, element.clientWidth),
        top: y ? element.scrollTop : centre(box.y, box.height, element.clientHeight),
        behavior: matchMedia('(prefers-reduced-motion: reduce)').matches ? 'instant' : 'smooth',
      })
    },
    [viewport],
  )

  return {
    scale: view?.scale ?? null,
    fitted: view?.fitted ?? false,
    zoomIn: () => zoomTo((view?.scale ?? 1) * STEP),
    zoomOut: () => zoomTo((view?.scale ?? 1) / STEP),
    fit: () => setView({ scale: fitScale(), fitted: true }),
    actualSize: () => zoomTo(1),
    reveal,
  }
}
