// The load generator of bench/registry-manifest.bench.ts, run in its own process (so the load tool does not share
// the server's event loop): autocannon against GET <url>/v1/devices/<id>/manifest, rotating over the device ids.
// Usage: node bench/registry/load.ts <baseUrl> <seconds> <connections> <pathTemplate> <id,id,...>
// Prints autocannon's result as one JSON line on stdout.
import autocannon, { type Request } from 'autocannon';

const [baseUrl, seconds, connections, template, idList] = process.argv.slice(2);
if (!baseUrl || !seconds || !connections || !template || !idList) {
  console.error('usage: load.ts <baseUrl> <seconds> <connections> <pathTemplate> <ids>');
  process.exit(2);
}
const ids = idList.split(',');
let next = 0;
const result = await autocannon({
  url: baseUrl,
  duration: Number(seconds),
  connections: Number(connections),
  pipelining: 1,
  requests: [
    {
      method: 'GET',
      setupRequest: (request: Request) => {
        request.path = template.replace('{id}', ids[next++ % ids.length]!);
        return request;
      },
    },
  ],
});
process.stdout.write(
  `${JSON.stringify({
    requests: result.requests.total,
    duration: result.duration,
    rps: result.requests.average,
    latency: {
      p50: result.latency.p50,
      p90: result.latency.p90,
      p99: result.latency.p99,
      max: result.latency.max,
    },
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
  })}\n`,
);
