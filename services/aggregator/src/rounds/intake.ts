import type { FlUpdate } from '@edgefl/contracts';
import { checkUpdate, decodeUpdate, l2Norm, type Weights } from '@edgefl/fl';
import { verifyEd25519 } from '@edgefl/keys';
import type { RoundRow, RoundStore } from './round-store.js';

/** Why an update is refused (the report and the metric label use these names). */
export type RejectionReason =
  | 'unknown-round'
  | 'wrong-tenant'
  | 'round-closed'
  | 'unselected-device'
  | 'unknown-device'
  | 'bad-signature'
  | 'replayed'
  | 'duplicate-device'
  | 'not-sealed'
  | 'wrong-key'
  | 'undecodable'
  | 'empty'
  | 'layer-count'
  | 'layer-length'
  | 'non-finite'
  | 'norm-exceeded'
  | 'bad-num-examples';

export type IntakeVerdict =
  | { verdict: 'duplicate-delivery' }
  | { verdict: 'rejected'; reason: RejectionReason; detail: string }
  | { verdict: 'accepted'; norm: number; weights: Weights };

/** HPKE context of an update: bound to the round (info) and the device (aad), as the device SDK seals it. */
export const sealInfo = (roundId: string) => `edgefl/fl.update/${roundId}`;

/** Opens a payload sealed to the round key; throws on a wrong key, altered bytes or another round/device. */
export type OpenSealed = (round: RoundRow, deviceId: string, payload: Uint8Array) => Promise<Uint8Array>;

/**
 * Every check an update goes through, in order: the round (known, same tenant, open), the device (selected,
 * known key, valid Ed25519 signature over the payload), replay (update id seen, device already counted), the
 * seal (HPKE to this round's key), then libs/fl's decoding and validation (shape, finite, norm bound, example
 * count). The first failure is the reason; a redelivery of the same bus event is recognised and skipped.
 */
export async function evaluateUpdate(
  u: FlUpdate,
  round: RoundRow | null,
  store: RoundStore,
  openSealed: OpenSealed,
): Promise<IntakeVerdict> {
  const reject = (reason: RejectionReason, detail: string): IntakeVerdict => ({
    verdict: 'rejected',
    reason,
    detail,
  });
  if (store.updateByEventId(u.eventId)) return { verdict: 'duplicate-delivery' };
  if (!round) return reject('unknown-round', `no round ${u.roundId}`);
  if (round.tenant !== u.tenant)
    return reject('wrong-tenant', `round ${u.roundId} belongs to another tenant`);
  if (round.state !== 'OPEN')
    return reject('round-closed', `round ${u.roundId} is ${round.state.toLowerCase()}`);
  if (!round.settings.selectedDevices.includes(u.deviceId))
    return reject('unselected-device', `device ${u.deviceId} was not selected for this round`);
  const key = store.deviceKey(u.tenant, u.deviceId);
  if (!key) return reject('unknown-device', `no registered key for device ${u.deviceId}`);
  if (key.keyId !== u.signingKeyId)
    return reject('bad-signature', `signing key ${u.signingKeyId} is not the device's current key`);
  let valid: boolean;
  try {
    valid = verifyEd25519(Buffer.from(key.publicKey, 'base64url'), u.payload, u.signature);
  } catch {
    valid = false;
  }
  if (!valid) return reject('bad-signature', 'the signature does not verify with the device key');
  const seen = store.seen(u.roundId, u.updateId, u.deviceId);
  if (seen.updateId) return reject('replayed', `update ${u.updateId} was already received`);
  if (seen.deviceAccepted)
    return reject('duplicate-device', `device ${u.deviceId} already has an accepted update`);
  if (u.payloadKind !== 'SEALED') return reject('not-sealed', `a ${u.payloadKind} payload in a sealed round`);
  let plain: Uint8Array;
  try {
    plain = await openSealed(round, u.deviceId, u.payload);
  } catch (error) {
    return reject(
      'wrong-key',
      `the payload does not open with this round's key (${(error as { code?: string }).code ?? 'error'})`,
    );
  }
  let weights: Weights;
  try {
    weights = decodeUpdate(plain).weights;
  } catch (error) {
    const message = (error as Error).message;
    return reject(/NaN|Infinity/.test(message) ? 'non-finite' : 'undecodable', message);
  }
  const bad = checkUpdate({ weights, numExamples: u.sampleCount }, round.shape, {
    ...(round.settings.maxNorm !== undefined ? { maxNorm: round.settings.maxNorm } : {}),
  });
  if (bad) return reject(bad.reason, bad.message);
  return { verdict: 'accepted', norm: l2Norm(weights), weights };
}
