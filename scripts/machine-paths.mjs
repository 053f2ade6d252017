#!/usr/bin/env node
// Prints the paths the model-based tests walk, one line each, generated from the built
// statechart (`npm run machine:paths` builds first). The generator is shared with the tests:
// tests/model/paths.mjs. Exits 1 when a declared transition has no path.
import { authMachine, configureAuthMachine } from 'auth-machine/machine'
import { toDirectedGraph } from 'xstate/graph'
import {
  createAuthModel,
  declaredTransitions,
  formatEvent,
  walkedTransitions,
} from '../tests/model/paths.mjs'

const countStates = (node) => 1 + node.children.reduce((n, child) => n + countStates(child), 0)
const declared = declaredTransitions(authMachine)
const out = []
const print = (line = '') => out.push(line)

print(
  `auth statechart: ${countStates(toDirectedGraph(authMachine)) - 1} states, ${declared.length} declared transitions`,
)
for (const transition of declared) print(`  ${transition.key.padEnd(30)} ${transition.label}`)

const profiles = [
  {
    profile: 'machine',
    title: 'every event the statechart accepts (executor a: the pure machine)',
  },
  {
    profile: 'client',
    title:
      'what an app, the token server and another tab can cause (executors a and b: the pure machine, and the real client against the real server)',
  },
]

let complete = true
for (const { profile, title } of profiles) {
  const paths = createAuthModel({ configureAuthMachine, profile }).paths()
  const walked = walkedTransitions(paths)
  const gaps = declared.filter((t) => !walked.has(t.key))
  print()
  print(`${profile} paths (${paths.length}): ${title}`)
  const width = String(paths.length).length
  for (const [index, path] of paths.entries()) {
    print(`  ${String(index + 1).padStart(width)}. ${path.events.map(formatEvent).join(' → ')}`)
  }
  print(`  transitions covered: ${declared.length - gaps.length}/${declared.length}`)
  for (const gap of gaps) print(`  not reachable this way: ${gap.label}`)
  if (profile === 'machine' && gaps.length > 0) complete = false
}

print()
print('Legend: refresh.done / refresh.error(…) are the refresh actor settling')
print('(xstate.done.actor.refresh / xstate.error.actor.refresh); after.<delay>(<state>) is a')
print('delayed transition firing (xstate.after.<delay>.auth.<state>); clock.sleep is the device')
print('suspended until the access token expired (time passes, no timer runs).')
console.log(out.join('\n'))
process.exitCode = complete ? 0 : 1
