// The real token server in a process of its own, so that on loopback the client's event loop
// does not also run the server. Prints its URL as one JSON line, then serves until its stdin
// closes (bench/remote.mjs drives it through the `/__control/*` routes).
//
//   node bench/server.mjs [accessTokenTtl seconds]

import { createTestAuthServer } from 'auth-machine/testing'

const accessTokenTtl = Number(process.argv[2] ?? 1800)
const server = await createTestAuthServer({ accessTokenTtl })
console.log(JSON.stringify({ url: server.url }))
process.stdin.resume()
process.stdin.on('end', async () => {
  await server.close()
  process.exit(0)
})
