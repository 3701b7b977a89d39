import { spawn } from 'node:child_process';
import { cpSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  DeviceIdentity,
  loadModel,
  ModelStore,
  OtaClient,
  Outbox,
  RegistryClient,
  runSession,
  TrustStore,
  type OtaStep,
} from '@edgefl/device-sdk';
import { mlp, sha256Hex } from '@edgefl/model';
import { tempDir } from '@edgefl/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCli } from './cli-process.js';
import {
  onnxOf,
  seedRegistry,
  startProxy,
  startRegistryProcess,
  versionWeights,
  type RegistryProcess,
} from './device-stack.js';

const TENANT = 'acme';
const MODEL = 'big';
/** Two devices: the proxy serves `fault-full` the full artifact (plan rewritten to "full"), `fault-delta` the delta. */
const DEVICES = ['fault-full', 'fault-delta'] as const;
type Device = (typeof DEVICES)[number];
const spec = mlp(30, [256, 128], 1, 'sigmoid'); // ~160 KB: a full download arrives in several chunks
const v1 = onnxOf(spec, versionWeights(spec, 3, 0));
const v2 = onnxOf(spec, versionWeights(spec, 3, 1));
const TRIALS_PER_STEP = 20;
/**
 * The OTA states and, per state, the kill points inside it; a state's trials cycle through its points (APPLYING's
 * four: after the model file is written, renamed, after the pointer file is written, renamed).
 */
const STEPS: Array<{ state: string; points: Array<[OtaStep, number]> }> = [
  { state: 'PENDING', points: [['pending', 1]] },
  {
    state: 'DOWNLOADING',
    points: [
      ['download-progress', 1],
      ['download-progress', 2],
      ['download-progress', 3],
      ['downloaded', 1],
    ],
  },
  {
    state: 'VALIDATING',
    points: [
      ['validating', 1],
      ['validated', 1],
    ],
  },
  {
    state: 'APPLYING',
    points: [
      ['applying:model-written', 1],
      ['applying:model-renamed', 1],
      ['applying:pointer-written', 1],
      ['applying:pointer-renamed', 1],
    ],
  },
  { state: 'ACTIVE', points: [['active', 1]] },
];
const child = fileURLToPath(new URL('./fixtures/ota-child.mjs', import.meta.url));

let registry: RegistryProcess;
let proxy: Awaited<ReturnType<typeof startProxy>>;
let dir: Awaited<ReturnType<typeof tempDir>>;
let template: string;
const identities = new Map<Device, { keyFile: string; identity: DeviceIdentity }>();
let noDelta = false;

/** The `sub` of the bearer token of a request (which device is asking). */
function deviceOf(authorization: string | undefined): string | null {
  const payload = authorization?.split(' ')[1]?.split('.')[1];
  if (!payload) return null;
  return (JSON.parse(Buffer.from(payload, 'base64url').toString()) as { sub?: string }).sub ?? null;
}

function otaIn(path: string, device: Device, limits?: Record<string, number>) {
  const store = new ModelStore(join(path, 'models'));
  store.recover();
  const ota = new OtaClient({
    device: { tenant: TENANT, deviceId: device, modelId: MODEL },
    store,
    trust: new TrustStore(join(path, 'trust.json')),
    registry: new RegistryClient({ baseUrl: proxy.url, identity: identities.get(device)!.identity }),
    report: () => {},
    session: { warmupRuns: 0 },
    attempts: 1,
    ...(limits ? { limits } : {}),
  });
  return { store, ota };
}

/** After a crash: is there an active model whose bytes match its sha256 and that loads and answers finitely? */
async function hasValidModel(path: string): Promise<{ ok: boolean; version: number | null }> {
  const store = new ModelStore(join(path, 'models'));
  const { active } = store.recover(); // verifies the file against its sha256, falls back to the previous version
  if (!active) return { ok: false, version: null };
  const bytes = store.read(active);
  if (sha256Hex(bytes) !== active.sha256) return { ok: false, version: active.version };
  const model = await loadModel(active, bytes, { warmupRuns: 0 });
  const out = await runSession(model, new Float32Array(spec.inputs).fill(0.5), 1);
  await model.session.release();
  return { ok: out.length === 1 && Number.isFinite(out[0]!), version: active.version };
}

function runChild(
  path: string,
  device: Device,
  killAt: OtaStep,
  occurrence: number,
): Promise<'killed' | 'finished'> {
  return new Promise((resolve, reject) => {
    const config = {
      dir: path,
      keyFile: identities.get(device)!.keyFile,
      deviceId: device,
      tenant: TENANT,
      modelId: MODEL,
      url: proxy.url,
      killAt,
      occurrence,
    };
    const proc = spawn(process.execPath, [child, JSON.stringify(config)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    let killed = false;
    proc.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (!killed && out.includes('AT ')) {
        killed = true;
        proc.kill('SIGKILL');
      }
    });
    proc.stderr.on('data', (d: Buffer) => (err += d.toString()));
    proc.on('exit', (code, signal) => {
      if (killed && signal === 'SIGKILL') resolve('killed');
      else if (code === 0 && out.includes('DONE')) resolve('finished');
      else reject(new Error(`child exited ${code ?? signal}: ${err.slice(-1500)}`));
    });
  });
}

beforeAll(async () => {
  buildCli();
  dir = await tempDir('edgefl-device-faults-');
  registry = await startRegistryProcess();
  for (const id of DEVICES) {
    const keyFile = join(dir.path, `${id}.pem`);
    identities.set(id, { keyFile, identity: DeviceIdentity.loadOrCreate(id, keyFile) });
  }
  await seedRegistry(
    registry,
    MODEL,
    spec,
    DEVICES.map((id) => ({ id, publicKey: identities.get(id)!.identity.publicKeyBase64 })),
  );
  await registry.upload(MODEL, v1);
  proxy = await startProxy(registry.url);
  // the template device: release keys pinned, v1 installed
  template = join(dir.path, 'template');
  mkdirSync(template, { recursive: true });
  new TrustStore(join(template, 'trust.json')).pin(
    await (await fetch(`${registry.url}/v1/release-keys`)).json(),
  );
  await registry.releaseStable(MODEL, 1);
  expect((await otaIn(template, 'fault-delta').ota.checkForUpdate()).state).toBe('ACTIVE');
  await registry.upload(MODEL, v2);
  await registry.release(MODEL, 2);
  // odd trials download the full artifact (the plan is rewritten to "full"), even ones the delta
  proxy.tamper = (req, up, res) => {
    if (!req.url?.includes('/delta?')) return false;
    if (!(noDelta || deviceOf(req.headers.authorization) === 'fault-full')) return false;
    const plan = JSON.parse(up.body.toString());
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ ...plan, kind: 'full', steps: [], totalBytes: plan.fullBytes }));
    return true;
  };
}, 240_000);

afterAll(async () => {
  await proxy?.close();
  await registry?.stop();
  await dir?.remove();
});

describe('OTA fault injection: SIGKILL of a device process at every step, corrupt / truncated / stalled downloads', () => {
  it(`leaves every device on a valid model (${TRIALS_PER_STEP} SIGKILLs in each OTA state), and those resumed reach v2`, async () => {
    const started = Date.now();
    let trials = 0;
    let killed = 0;
    let withoutValidModel = 0;
    let resumed = 0;
    let resumeTried = 0;
    let statusesKept = 0;
    const perStep: Record<string, number> = {};
    const runOne = async (state: (typeof STEPS)[number], trial: number) => {
      const [step, occurrence] = state.points[trial % state.points.length]!;
      // later chunks exist only on the (multi-chunk) full download
      const device: Device = occurrence > 1 || trial % 2 === 1 ? 'fault-full' : 'fault-delta';
      const path = join(dir.path, `t-${state.state}-${trial}`);
      cpSync(template, path, { recursive: true });
      const how = await runChild(path, device, step, occurrence);
      trials++;
      if (how === 'killed') killed++;
      perStep[state.state] = (perStep[state.state] ?? 0) + 1;
      if (!(await hasValidModel(path)).ok) withoutValidModel++;
      const outbox = new Outbox(join(path, 'buffer.sqlite'));
      if (outbox.stats().pending['ota-status'] > 0) statusesKept++;
      outbox.close();
      // resuming costs a whole update in this process: half the trials (both kinds of device, every state) do it
      if (trial % 4 < 2) {
        resumeTried++;
        const outcome = await otaIn(path, device).ota.checkForUpdate();
        if (outcome.state === 'ACTIVE' && outcome.version === 2) resumed++;
      }
    };
    // two trials at a time (one per core), each its own process and data directory
    const PARALLEL = 2;
    for (const state of STEPS) {
      for (let trial = 0; trial < TRIALS_PER_STEP; trial += PARALLEL) {
        await Promise.all(
          Array.from({ length: Math.min(PARALLEL, TRIALS_PER_STEP - trial) }, (_, k) =>
            runOne(state, trial + k),
          ),
        );
      }
    }
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    console.log(
      `fault injection: ${trials} trials (${TRIALS_PER_STEP} per OTA state × ${STEPS.length} states, ${STEPS.reduce((n, s) => n + s.points.length, 0)} kill points), ${killed} SIGKILLs; devices left without a valid model: ${withoutValidModel}; resumed to v2: ${resumed} of ${resumeTried} tried; OTA statuses kept across the kill: ${statusesKept}; ${seconds} s`,
    );
    expect(trials).toBe(TRIALS_PER_STEP * STEPS.length);
    expect(Object.values(perStep).every((n) => n >= TRIALS_PER_STEP)).toBe(true);
    expect(killed).toBe(trials);
    expect(withoutValidModel).toBe(0);
    expect(resumeTried).toBe(trials / 2);
    expect(resumed).toBe(resumeTried);
    expect(statusesKept).toBe(trials);
  }, 300_000);

  it('corrupted, truncated and stalled downloads: 20 trials each, the device keeps v1 and never installs bad bytes', async () => {
    let trials = 0;
    let withoutValidModel = 0;
    let installedBad = 0;
    const refused: Record<string, number> = {};
    const modes = ['corrupt', 'truncate', 'stall'] as const;
    for (const mode of modes) {
      for (let trial = 0; trial < 20; trial++) {
        const path = join(dir.path, `d-${mode}-${trial}`);
        cpSync(template, path, { recursive: true });
        noDelta = trial % 2 === 1;
        const cut = 0.1 + (0.8 * trial) / 20;
        proxy.tamper = (req, up, res) => {
          const download = req.url?.includes('/artifact') || req.url?.includes('/deltas/');
          if (!noDelta && req.url?.includes('/delta?')) return false;
          if (noDelta && req.url?.includes('/delta?')) {
            const plan = JSON.parse(up.body.toString());
            res.writeHead(200, { 'content-type': 'application/json' });
            res.end(JSON.stringify({ ...plan, kind: 'full', steps: [], totalBytes: plan.fullBytes }));
            return true;
          }
          if (!download || up.status >= 300) return false;
          const at = Math.floor(up.body.length * cut);
          if (mode === 'corrupt') {
            const copy = Buffer.from(up.body);
            copy[at]! ^= 0x01;
            res.writeHead(up.status, up.headers);
            res.end(copy);
          } else if (mode === 'truncate') {
            res.writeHead(up.status, up.headers);
            res.write(up.body.subarray(0, at), () => res.destroy());
          } else {
            res.writeHead(up.status, up.headers);
            res.write(up.body.subarray(0, at)); // then nothing: a stalled server
          }
          return true;
        };
        const { ota } = otaIn(path, 'fault-delta', {
          stallTimeoutMs: 150,
          rateGraceMs: 60_000,
          rateWindowMs: 60_000,
          minBytesPerSecond: 1,
        });
        const outcome = await ota.checkForUpdate();
        trials++;
        if (outcome.state === 'FAILED') refused[outcome.code] = (refused[outcome.code] ?? 0) + 1;
        const check = await hasValidModel(path);
        if (!check.ok) withoutValidModel++;
        // a delta path that fails falls back to the (equally broken) full download: never ACTIVE on bad bytes
        if (outcome.state === 'ACTIVE') installedBad++;
        expect(check.version).toBe(1);
      }
    }
    proxy.tamper = null;
    console.log(
      `download faults: ${trials} trials (corrupt, truncate, stall × 20); devices left without a valid model: ${withoutValidModel}; bad installs: ${installedBad}; refusals: ${JSON.stringify(refused)}`,
    );
    expect(withoutValidModel).toBe(0);
    expect(installedBad).toBe(0);
    expect(refused['hash-mismatch'] ?? 0).toBeGreaterThanOrEqual(20);
    expect(refused['truncated'] ?? 0).toBeGreaterThanOrEqual(20);
    expect(refused['slow-retrieval'] ?? 0).toBeGreaterThanOrEqual(20);
  }, 120_000);
});
