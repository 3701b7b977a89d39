// The load generator of bench/inference-serving.bench.ts, run in its own process (so the client does not share
// the server's event loop): `concurrency` clients, each with one request in flight at a time, for `seconds`,
// over HTTP (OIP JSON, keep-alive) or gRPC (inference.GRPCInferenceService, raw_input_contents), rotating over 256
// distinct fraud-MLP rows. Latency is recorded per request in microseconds (hdr-histogram-js).
// Usage: node bench/inference/load.ts <http|grpc> <target> <seconds> <concurrency> <token> [protoPath]
// Prints one JSON line on stdout.
import { Agent, request } from 'node:http';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { build } from 'hdr-histogram-js';

const [mode, target, seconds, concurrency, token, protoPath] = process.argv.slice(2);
if ((mode !== 'http' && mode !== 'grpc') || !target || !seconds || !concurrency || !token) {
  console.error('usage: load.ts <http|grpc> <target> <seconds> <concurrency> <token> [protoPath]');
  process.exit(2);
}
const rows = Array.from({ length: 256 }, (_, r) =>
  Array.from({ length: 30 }, (_, i) => Math.fround(Math.sin(r * 31 + i))),
);
const bodies = rows.map((row) =>
  JSON.stringify({ inputs: [{ name: 'input', shape: [1, 30], datatype: 'FP32', data: row }] }),
);
const raws = rows.map((row) => Buffer.from(Float32Array.from(row).buffer));
const histogram = build({
  lowestDiscernibleValue: 1,
  highestTrackableValue: 60_000_000,
  numberOfSignificantValueDigits: 3,
});
const statuses: Record<string, number> = {};
let errors = 0;
let done = 0;
const clients = Number(concurrency);
const deadline = performance.now() + Number(seconds) * 1000;

const agent = new Agent({ keepAlive: true, maxSockets: clients });
const url = new URL(mode === 'http' ? target : 'http://127.0.0.1');
function httpOnce(i: number): Promise<string> {
  return new Promise((resolve) => {
    const body = bodies[i % bodies.length]!;
    const req = request(
      {
        agent,
        host: url.hostname,
        port: url.port,
        method: 'POST',
        path: '/v2/models/fraud/infer',
        headers: {
          authorization: `Bearer ${token}`,
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
        },
      },
      (res) => {
        res.on('data', () => undefined);
        res.on('end', () => resolve(String(res.statusCode)));
      },
    );
    req.on('error', (error) => resolve(`error:${error.message}`));
    req.end(body);
  });
}

type Client = grpc.Client & {
  ModelInfer(req: unknown, md: grpc.Metadata, cb: (e: grpc.ServiceError | null) => void): void;
};
let grpcClient: Client | null = null;
const metadata = new grpc.Metadata();
metadata.set('authorization', `Bearer ${token}`);
if (mode === 'grpc') {
  const pkg = grpc.loadPackageDefinition(
    protoLoader.loadSync(protoPath!, {
      keepCase: true,
      longs: Number,
      enums: String,
      defaults: true,
      oneofs: true,
    }),
  ) as unknown as {
    inference: { GRPCInferenceService: new (a: string, c: grpc.ChannelCredentials) => Client };
  };
  grpcClient = new pkg.inference.GRPCInferenceService(target, grpc.credentials.createInsecure());
}
function grpcOnce(i: number): Promise<string> {
  return new Promise((resolve) =>
    grpcClient!.ModelInfer(
      {
        model_name: 'fraud',
        inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 30] }],
        raw_input_contents: [raws[i % raws.length]!],
      },
      metadata,
      (error) => resolve(error ? `grpc:${error.code}` : 'ok'),
    ),
  );
}

async function client(id: number): Promise<void> {
  for (let i = id; performance.now() < deadline; i += clients) {
    const t = performance.now();
    const status = mode === 'http' ? await httpOnce(i) : await grpcOnce(i);
    const us = Math.max(1, Math.round((performance.now() - t) * 1000));
    statuses[status] = (statuses[status] ?? 0) + 1;
    if (status === '200' || status === 'ok') {
      histogram.recordValue(us);
      done++;
    } else errors++;
  }
}
const started = performance.now();
await Promise.all(Array.from({ length: clients }, (_, i) => client(i)));
const elapsed = (performance.now() - started) / 1000;
grpcClient?.close();
agent.destroy();
process.stdout.write(
  `${JSON.stringify({
    requests: done,
    rps: done / elapsed,
    p50: histogram.getValueAtPercentile(50) / 1000,
    p99: histogram.getValueAtPercentile(99) / 1000,
    errors,
    statuses,
  })}\n`,
);
