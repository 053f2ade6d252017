// Types of paths.mjs, for the TypeScript tests (the script uses the module untyped).
import type { AnyStateMachine, AnyTransitionDefinition, SnapshotFrom } from 'xstate'
import type {
  AuthEmitted,
  AuthEvent,
  AuthMachine,
  MachineTiming,
  RefreshFailure,
  RefreshInput,
  RetryPolicy,
  Session,
} from '../../machines/index.js'

export declare const MODEL_START: number
export declare const ACCESS_TTL_SECONDS: number
export declare const REFRESH_TTL_SECONDS: number
export declare const MODEL_TIMING: Readonly<{
  refreshMargin: number
  refreshTimeout: number
  retry: Readonly<RetryPolicy>
}>
export declare const MODEL_RANDOM: () => number
export declare const MODEL_PATIENCE: number
export declare const SLEEP: 'clock.sleep'
export declare const REJECTED_FAILURE: Readonly<RefreshFailure>
export declare const TRANSIENT_FAILURE: Readonly<RefreshFailure>

/** What a model path sends: the machine's events, the refresh actor's results, timers, sleep. */
export type ModelEvent =
  | {
      type:
        | 'LOGIN'
        | 'RESTORED'
        | 'REFRESH_ANSWERED'
        | 'LOGOUT'
        | 'WAKE'
        | 'TOKEN_NEEDED'
        | 'REQUEST_ABORTED'
        | 'SESSION_ENDED'
        | 'clock.sleep'
        | 'xstate.done.actor.refresh'
    }
  | { type: 'TOKEN_REJECTED'; generation: 'current' | 'older' | 'otherEpoch' }
  | { type: 'NONCE_CHALLENGED'; generation: 'current' | 'otherEpoch' }
  /** Another tab's session: a refresh of this sign-in, or another sign-in. */
  | { type: 'SESSION_SYNCED'; signIn: 'same' | 'other' }
  | { type: 'xstate.error.actor.refresh'; failure: 'rejected' | 'transient' }
  | { type: `xstate.after.${string}` }

/** The concrete event the machine receives for a model event. */
export type MachineEvent =
  | AuthEvent
  | { type: 'xstate.done.actor.refresh'; output: Session }
  | { type: 'xstate.error.actor.refresh'; error: RefreshFailure }
  | { type: `xstate.after.${string}` }

export interface StepInfo {
  event: ModelEvent | null
  machineEvent: MachineEvent | null
  /** The transition keys taken, joined; `'init'`, `'clock.sleep'` or `'none'` otherwise. */
  took: string
  transitions: string[]
  /** How far the clock moved for this event: a timer's delay. */
  delay: number
  /** How far the clock moved while asleep. */
  delta: number
  emitted: AuthEmitted[]
  /** The refresh actor's input when this step started a refresh attempt. */
  spawned: RefreshInput | undefined
  /** Whether this step stopped the running refresh actor. */
  stopped: boolean
  /** Whether this step cancelled the refresh calls on the wire (the session ended). */
  abandoned: boolean
  /** What happened to the refresh call on the wire, by call id (1 for the first sent). */
  call: { sent?: number; joined?: number; superseded?: number; ended?: number }
}

/** The refresh call the client keeps on the wire (see src/refresh.ts). */
export interface ModelCall {
  id: number
  sentAt: number
  /** The session generation it spends the refresh token of. */
  generation: number
}

export interface ModelState {
  snapshot: SnapshotFrom<AuthMachine>
  /** The model's clock, epoch ms. */
  now: number
  /** Armed timers: delayed event type → when it fires. */
  timers: Record<string, number>
  seq: number
  /** Every token generation the client has held, with its session epoch, oldest first. */
  held: Array<{ generation: number; epoch: number }>
  /** The refresh call on the wire, if any. */
  call: ModelCall | null
  /** How many refresh calls were sent so far. */
  calls: number
  /** How this state was reached. */
  step: StepInfo
}

export interface ModelStep extends StepInfo {
  event: ModelEvent
  before: ModelState
  after: ModelState
}

export interface ModelPath {
  name: string
  events: ModelEvent[]
  steps: ModelStep[]
}

export type Profile = 'machine' | 'client'

export interface AuthModel {
  machine: AuthMachine
  profile: Profile
  initial: ModelState
  step(state: ModelState, event: ModelEvent): ModelState
  events(state: ModelState): ModelEvent[]
  serialize(state: ModelState): string
  replay(events: ModelEvent[]): ModelStep[]
  paths(): ModelPath[]
}

export interface DeclaredTransition {
  key: string
  label: string
}

export declare function transitionKey(transition: AnyTransitionDefinition): string
export declare function describeTransition(transition: AnyTransitionDefinition): string
export declare function declaredTransitions(machine: AnyStateMachine): DeclaredTransition[]
export declare function formatEvent(event: ModelEvent): string
export declare function formatPath(events: ModelEvent[]): string
export declare function walkedTransitions(paths: ModelPath[]): Set<string>
export declare function createAuthModel(options: {
  configureAuthMachine: (timing?: Partial<MachineTiming>) => AuthMachine
  profile?: Profile
  crossTab?: boolean
  /** The client uses DPoP: servers may challenge its requests for a nonce. */
  dpop?: boolean
}): AuthModel
