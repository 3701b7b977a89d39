import { SimRandom, stream } from '../random.js';
import { DatasetError } from './errors.js';

/** Merchant categories of the synthetic card payments (one-hot features `mcc_<name>`). */
export const MERCHANT_CATEGORIES = [
  'grocery',
  'fuel',
  'restaurant',
  'retail',
  'electronics',
  'travel',
  'digital_goods',
  'jewelry',
] as const;
export type MerchantCategory = (typeof MERCHANT_CATEGORIES)[number];

export const FRAUD_FEATURES: readonly string[] = [
  'amount_log', // ln(1 + amount in currency units)
  'hour_sin', // hour of day on the unit circle (23:00 is next to 00:00)
  'hour_cos',
  'velocity_1h', // the card's transactions in the last hour
  'velocity_24h', // … in the last 24 hours
  'distance_log', // ln(1 + km from the cardholder's home)
  'device_risk', // the terminal's or device's risk score in [0, 1] (fingerprint, emulator, new device, …)
  ...MERCHANT_CATEGORIES.map((m) => `mcc_${m}`),
];

/** How one kind of transaction (a region's benign traffic, or its fraud) is drawn. */
interface Profile {
  /** ln(amount) ~ N(mu, sd). */
  amount: [mu: number, sd: number];
  /** Hour of day ~ N(mean, sd) wrapped to 0..23; sd ≥ 12 is close to uniform. */
  hour: [mean: number, sd: number];
  /** Poisson means of the card's other transactions in the last hour and day. */
  velocity: [perHour: number, perDay: number];
  /** Distance from home: a mixture of exp(nearKm) and, with probability farShare, lognormal(ln farKm, 0.6). */
  distance: [nearKm: number, farShare: number, farKm: number];
  /** device_risk = sigmoid(N(mu, sd)). */
  deviceRisk: [mu: number, sd: number];
  /** Weights over MERCHANT_CATEGORIES. */
  merchants: readonly number[];
}

export interface FraudRegion {
  readonly name: string;
  /** What fraud looks like there. */
  readonly mechanics: string;
  /** Share of all transactions. */
  readonly share: number;
  /** Fraud rate relative to the fleet's (the generator rescales so the expected overall rate is `fraudRate`). */
  readonly relativeRate: number;
  readonly benign: Profile;
  readonly fraud: Profile;
}

//                          grocery fuel  rest  retail elec  travel digital jewelry
const URBAN_MIX = /*     */ [0.24, 0.08, 0.2, 0.18, 0.06, 0.04, 0.18, 0.02];
const TOURIST_MIX = /*   */ [0.14, 0.1, 0.26, 0.16, 0.04, 0.22, 0.06, 0.02];
const RURAL_MIX = /*     */ [0.36, 0.26, 0.12, 0.14, 0.04, 0.02, 0.05, 0.01];
const INDUSTRIAL_MIX = /**/ [0.26, 0.16, 0.18, 0.2, 0.08, 0.04, 0.06, 0.02];

/**
 * Four regions whose fraud works differently, so a model trained on one region's devices misses another's fraud:
 * the reason a non-IID fleet matters. Benign traffic overlaps every fraud signal (travellers are far from home,
 * new phones look risky, night shifts shop at 3 am), so no single feature separates the classes.
 */
export const FRAUD_REGIONS: readonly FraudRegion[] = [
  {
    name: 'metro',
    mechanics: 'card-not-present account takeover: risky devices buying digital goods and electronics online',
    share: 0.35,
    relativeRate: 1.2,
    benign: {
      amount: [3.2, 0.9],
      hour: [14, 4.5],
      velocity: [0.3, 3],
      distance: [4, 0.04, 300],
      deviceRisk: [-2.5, 0.9],
      merchants: URBAN_MIX,
    },
    fraud: {
      amount: [4.3, 0.8],
      hour: [12, 14],
      velocity: [1.2, 5],
      distance: [6, 0.1, 400],
      deviceRisk: [0.9, 0.9],
      merchants: [0.02, 0.01, 0.03, 0.06, 0.3, 0.06, 0.48, 0.04],
    },
  },
  {
    name: 'coast',
    mechanics: 'skimmed and cloned cards used in person far from home, at night, at fuel pumps and shops',
    share: 0.25,
    relativeRate: 1,
    benign: {
      amount: [3.5, 1],
      hour: [15, 4.5],
      velocity: [0.4, 4],
      distance: [8, 0.3, 250],
      deviceRisk: [-2.2, 0.9],
      merchants: TOURIST_MIX,
    },
    fraud: {
      amount: [4.4, 0.7],
      hour: [2.5, 2.5],
      velocity: [1.5, 6],
      distance: [40, 0.85, 900],
      deviceRisk: [-1.8, 0.9],
      merchants: [0.06, 0.38, 0.04, 0.3, 0.12, 0.02, 0.02, 0.06],
    },
  },
  {
    name: 'rural',
    mechanics: 'card testing: bursts of tiny online purchases from stolen card numbers',
    share: 0.2,
    relativeRate: 0.8,
    benign: {
      amount: [3.4, 0.9],
      hour: [13, 4],
      velocity: [0.2, 2],
      distance: [15, 0.05, 200],
      deviceRisk: [-2.6, 0.8],
      merchants: RURAL_MIX,
    },
    fraud: {
      amount: [0.8, 0.6],
      hour: [10, 14],
      velocity: [9, 25],
      distance: [20, 0.2, 300],
      deviceRisk: [-0.4, 0.9],
      merchants: [0.02, 0.02, 0.02, 0.04, 0.04, 0.02, 0.82, 0.02],
    },
  },
  {
    name: 'industrial',
    mechanics: 'high-value merchandise: large electronics and jewelry purchases, quickly resold',
    share: 0.2,
    relativeRate: 0.9,
    benign: {
      amount: [3.6, 1.1],
      hour: [12, 6],
      velocity: [0.3, 3],
      distance: [10, 0.08, 250],
      deviceRisk: [-2.3, 0.9],
      merchants: INDUSTRIAL_MIX,
    },
    fraud: {
      amount: [6.6, 0.6],
      hour: [14, 4],
      velocity: [0.8, 6],
      distance: [25, 0.3, 150],
      deviceRisk: [-1.2, 0.9],
      merchants: [0.01, 0.01, 0.02, 0.12, 0.5, 0.04, 0.04, 0.26],
    },
  },
];

export interface FraudOptions {
  /** Transactions to draw (default 20,000; at least 500). */
  rows?: number;
  seed: number;
  /** Expected share of fraud over the whole set (default 0.01). */
  fraudRate?: number;
}

export interface FraudTable {
  readonly featureNames: readonly string[];
  readonly regionNames: readonly string[];
  readonly rows: number;
  readonly cols: number;
  /** rows × cols, row-major, unstandardized. */
  readonly features: Float64Array;
  /** 1 = fraud. */
  readonly labels: Int32Array;
  /** Index into regionNames per row. */
  readonly regions: Uint8Array;
}

export const FRAUD_DEFAULT_ROWS = 20_000;

function draw(rng: SimRandom, p: Profile, out: Float64Array, at: number): void {
  const amount = Math.exp(rng.normal(p.amount[0], p.amount[1]));
  const hour = (((Math.round(rng.normal(p.hour[0], p.hour[1])) % 24) + 24) % 24) + rng.next();
  const [nearKm, farShare, farKm] = p.distance;
  const km = rng.bernoulli(farShare) ? Math.exp(rng.normal(Math.log(farKm), 0.6)) : rng.exponential(nearKm);
  out[at] = Math.log1p(amount);
  out[at + 1] = Math.sin((2 * Math.PI * hour) / 24);
  out[at + 2] = Math.cos((2 * Math.PI * hour) / 24);
  out[at + 3] = rng.poisson(p.velocity[0]);
  out[at + 4] = out[at + 3]! + rng.poisson(p.velocity[1]);
  out[at + 5] = Math.log1p(km);
  out[at + 6] = 1 / (1 + Math.exp(-rng.normal(p.deviceRisk[0], p.deviceRisk[1])));
  out[at + 7 + rng.categorical(p.merchants)] = 1;
}

/**
 * Synthetic card payments with ~`fraudRate` fraud whose mechanics depend on the region (FRAUD_REGIONS). Seeded and
 * deterministic: the same options give the same bytes. Each row draws its region by share, its label with the
 * region's fraud rate, then its features from the region's benign or fraud profile.
 */
export function generateFraud(options: FraudOptions): FraudTable {
  const rows = options.rows ?? FRAUD_DEFAULT_ROWS;
  const rate = options.fraudRate ?? 0.01;
  if (!Number.isSafeInteger(rows) || rows < 500 || rows > 10_000_000)
    throw new DatasetError('invalid-option', `fraud rows must be an integer in 500..10000000, got ${rows}`);
  if (!(rate > 0 && rate < 0.5))
    throw new DatasetError('invalid-option', `fraudRate must be in (0, 0.5), got ${rate}`);
  const rng = stream(options.seed, 'fraud');
  const shares = FRAUD_REGIONS.map((r) => r.share);
  const scale = rate / FRAUD_REGIONS.reduce((s, r) => s + r.share * r.relativeRate, 0);
  const cols = FRAUD_FEATURES.length;
  const features = new Float64Array(rows * cols);
  const labels = new Int32Array(rows);
  const regions = new Uint8Array(rows);
  for (let i = 0; i < rows; i++) {
    const r = rng.categorical(shares);
    const region = FRAUD_REGIONS[r]!;
    const fraud = rng.bernoulli(region.relativeRate * scale);
    regions[i] = r;
    labels[i] = fraud ? 1 : 0;
    draw(rng, fraud ? region.fraud : region.benign, features, i * cols);
  }
  return {
    featureNames: FRAUD_FEATURES,
    regionNames: FRAUD_REGIONS.map((r) => r.name),
    rows,
    cols,
    features,
    labels,
    regions,
  };
}
