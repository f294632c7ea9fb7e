// The environment is read here and nowhere else.
export interface Environment {
  pictoryApiKey: string | null;
  pictoryBaseUrl: string;
}

export const DEFAULT_PICTORY_BASE_URL = "https://api.pictory.ai/pictoryapis";

export function readEnvironment(env: NodeJS.ProcessEnv = process.env): Environment {
  const key = env.PICTORY_API_KEY?.trim();
  const base = env.PICTORY_BASE_URL?.trim();
  return { pictoryApiKey: key ? key : null, pictoryBaseUrl: base ? base.replace(/\/+$/, "") : DEFAULT_PICTORY_BASE_URL };
}
