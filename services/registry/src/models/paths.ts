/** Where devices download a version's artifact and a delta (the API routes of models.controller.ts). */
export const artifactPath = (modelId: string, version: number) =>
  `/v1/models/${modelId}/versions/${version}/artifact`;
export const deltaPath = (modelId: string, from: number, to: number) =>
  `/v1/models/${modelId}/deltas/${from}/${to}`;
