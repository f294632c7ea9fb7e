// Anchors and aliases across the documents one manifest is read as: the rows are composed a
// batch at a time (yaml-parse.ts), and an alias in a late row may name an anchor written in
// the header or in any row before it. Every document's nodes are walked once, in order, as
// it is read; an alias stands for the nearest anchor of its name before it in the file.
import { type Alias, isAlias, isMap, isScalar, isSeq, type Node } from "yaml";

interface Anchored {
  offset: number;
  node: Node;
}

export class YamlAnchors {
  /** Per name, the anchored nodes in the order of their offsets. */
  private readonly byName = new Map<string, Anchored[]>();
  private readonly targets = new Map<Alias, Node>();
  /** How many values an anchored node stands for, its aliases followed. */
  private readonly sizes = new Map<Node, number>();

  /**
   * Walks a document's contents: its anchors, its aliases' anchors, the size of each anchored
   * node. Recursion is as deep as the nesting, which the parser bounds (yaml-parse.ts).
   */
  add(root: unknown): void {
    this.walk(root);
  }

  /** The anchored node an alias stands for; undefined when no anchor of its name is above it. */
  target(alias: Alias): Node | undefined {
    return this.targets.get(alias);
  }

  /** Values the node stands for, its aliases followed; infinite when an alias in it names the node itself. */
  sizeOf(node: Node): number {
    return this.sizes.get(node) ?? Number.POSITIVE_INFINITY;
  }

  private walk(node: unknown): number {
    if (isAlias(node)) {
      const target = this.before(node.source, node.range?.[0] ?? Number.POSITIVE_INFINITY);
      if (target === undefined) return 1;
      this.targets.set(node, target);
      // Not yet counted: the alias is inside its own anchor's value.
      return this.sizes.get(target) ?? Number.POSITIVE_INFINITY;
    }
    if (!isScalar(node) && !isMap(node) && !isSeq(node)) return 0;
    if (node.anchor !== undefined) this.register(node.anchor, { offset: node.range?.[0] ?? 0, node });
    let size = 1;
    if (isMap(node)) for (const pair of node.items) size += this.walk(pair.key) + this.walk(pair.value);
    else if (isSeq(node)) for (const item of node.items) size += this.walk(item);
    if (node.anchor !== undefined) this.sizes.set(node, size);
    return size;
  }

  private register(name: string, anchored: Anchored): void {
    const list = this.byName.get(name) ?? [];
    let at = list.length;
    while (at > 0 && (list[at - 1]?.offset ?? 0) > anchored.offset) at--;
    list.splice(at, 0, anchored);
    this.byName.set(name, list);
  }

  /** The last node anchored as `name` before `offset`. */
  private before(name: string, offset: number): Node | undefined {
    const list = this.byName.get(name) ?? [];
    for (let at = list.length - 1; at >= 0; at--) {
      const anchored = list[at];
      if (anchored !== undefined && anchored.offset < offset) return anchored.node;
    }
    return undefined;
  }
}
