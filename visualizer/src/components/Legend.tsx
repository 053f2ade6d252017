/** How to read the chart: the notation a reader cannot guess, `[else]` first of all. */
export function Legend() {
  return (
    <dl className="legend" aria-label="How to read the statechart">
      <div>
        <dt>EVENT [guard]</dt>
        <dd>taken only when the guard holds</dd>
      </div>
      <div>
        <dt>[else]</dt>
        <dd>
          the fallback: an event's transitions are tried in order, and [else] is taken when none of
          the guards before it holds (hover a label to see which)
        </dd>
      </div>
      <div>
        <dt>↺ EVENT</dt>
        <dd>handled inside the state, which is not left (e.g. a request joins the queue)</dd>
      </div>
      <div>
        <dt>⟳ EVENT</dt>
        <dd>leaves the state and enters it again (its timers restart)</dd>
      </div>
      <div>
        <dt>→ border</dt>
        <dd>enters that state at its initial child, the one its ● points to</dd>
      </div>
      <div>
        <dt>colours</dt>
        <dd>
          active state as the badge: fresh green, refreshing blue, stale amber, expired red, signed
          out grey; last transition violet
        </dd>
      </div>
    </dl>
  )
}
