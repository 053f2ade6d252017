import { Client, fetchExchange, gql, type OperationResult } from '@urql/core'
import { afterEach, describe, expect, it } from 'vitest'
import { SessionExpiredError } from '../../src/fetch.js'
import type { Harness } from '../helpers.js'
import {
  BURST,
  currentToken,
  expectOneRefreshForTheBurst,
  expireToken,
  logged,
  signedIn,
  tokenSent,
  withRejectedReplay,
} from './support.js'

// urql with `new Client({ url, exchanges: [fetchExchange], fetch: auth.fetch })`. urql calls
// fetch with a URL string and an init: queries as GET (variables in the query string),
// mutations as POST with a JSON body.
//
// The token server has no GraphQL route: /api/graphql answers the protected echo
// `{ ok, ... }`, which urql turns into the network error "No Content" because it holds neither
// `data` nor `errors`. What tells an accepted token from a refused one is the HTTP status urql
// keeps on the error (200 against 401), and the server's own log.

let h: Harness
afterEach(async () => {
  await h?.close()
})

const Burst = gql`
  query Burst($call: Int!) {
    echo(call: $call) {
      ok
    }
  }
`
const Me = gql`
  query Me {
    me {
      sub
    }
  }
`
const AddItem = gql`
  mutation AddItem($title: String!, $qty: Int) {
    addItem(title: $title, qty: $qty) {
      ok
    }
  }
`

const protectedClient = () =>
  new Client({
    url: `${h.server.url}/api/graphql`,
    exchanges: [fetchExchange],
    fetch: h.auth.fetch,
  })

/** The HTTP status urql keeps on a result's error; undefined when no response came back. */
function statusOf(result: OperationResult): number | undefined {
  const response: unknown = result.error?.response
  return response instanceof Response ? response.status : undefined
}

/** The server's echo reached urql: a 200 urql cannot read as GraphQL. */
const acceptedByServer = (result: OperationResult) =>
  statusOf(result) === 200 && result.error?.networkError?.message === 'No Content'

describe('urql with fetch: auth.fetch', () => {
  it(`${BURST} concurrent queries on an expired token: 1 refresh, each replayed at most once`, async () => {
    h = await signedIn()
    const client = protectedClient()
    const expired = await expireToken(h)

    const results = await Promise.all(
      Array.from({ length: BURST }, (_, call) => client.query(Burst, { call }).toPromise()),
    )

    expect(results.filter(acceptedByServer)).toHaveLength(BURST)
    expectOneRefreshForTheBurst(h, '/api/graphql', { expired, fresh: await currentToken(h) })
  })

  it('a mutation that meets a 401 is replayed with the same body', async () => {
    h = await signedIn()
    const client = protectedClient()
    const expired = await expireToken(h)

    const result = await client.mutation(AddItem, { title: 'milk', qty: 2 }).toPromise()

    expect(acceptedByServer(result)).toBe(true)
    const [first, replay, ...more] = logged(h.server, '/api/graphql', {
      expired,
      fresh: await currentToken(h),
    })
    expect(more).toEqual([])
    expect(first).toMatchObject({ method: 'POST', token: 'expired' })
    expect(replay).toMatchObject({ method: 'POST', token: 'fresh', body: first?.body })
    expect(JSON.parse(first?.body ?? '{}')).toMatchObject({
      operationName: 'AddItem',
      variables: { title: 'milk', qty: 2 },
    })
  })

  it('a 401 that survives the replay is the network error "Unauthorized" with status 401', async () => {
    h = await signedIn()
    const client = protectedClient()

    const result = await withRejectedReplay(h, () => client.query(Me, {}).toPromise())

    expect(result.data).toBeUndefined()
    expect(result.error?.networkError?.message).toBe('Unauthorized')
    expect(statusOf(result)).toBe(401)
    expect(tokenSent(h.server, '/api/graphql')).toEqual([true, true])
    expect(h.server.counters.refreshCalls).toBe(1)
  })

  it('a refused refresh is the networkError of the result: the SessionExpiredError itself', async () => {
    h = await signedIn()
    const client = protectedClient()
    h.server.revokeSessions()

    const results = await Promise.all([
      client.query(Me, {}).toPromise(),
      client.mutation(AddItem, { title: 'milk' }).toPromise(),
    ])

    for (const result of results) {
      expect(result.error?.networkError).toBeInstanceOf(SessionExpiredError)
      expect(statusOf(result)).toBeUndefined()
    }
    expect(h.server.counters.refreshCalls).toBe(1)
  })
})
