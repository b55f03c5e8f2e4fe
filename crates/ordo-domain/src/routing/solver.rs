//! The exact plan search in index form: packages are `node × address` numbers, weights are
//! integers, and feasibility is a max-flow per SKU. Knows nothing of ids, money or explanations;
//! `mod.rs` translates in and out. See the module docs of `routing` for the argument.

use super::SearchBudget;
use std::collections::HashMap;

/// A package's weight orders plans by cost, then by number of packages, then by total distance:
/// `cost · 2^64 + 2^44 + metres`. Metres stay below 2^25 per package and costs below 2^41 (10^12
/// handling + distance), so sums over thousands of packages never carry between the fields.
pub(super) fn weight(cost: i64, distance_m: i64) -> i128 {
    ((cost as i128) << 64) + (1i128 << 44) + distance_m as i128
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Line {
    /// Lines of one SKU form a group: they share that SKU's stock at every node.
    pub group: usize,
    pub dest: usize,
    pub qty: i64,
}

pub(super) struct Problem {
    nodes: usize,
    dests: usize,
    lines: Vec<Line>,
    /// Line indices per SKU group.
    groups: Vec<Vec<usize>>,
    /// Per package `node * dests + dest`.
    weight: Vec<i128>,
    /// Per `node * groups + group`.
    stock: Vec<i64>,
    /// Packages each node may still ship.
    capacity: Vec<u32>,
    /// Per `node * lines + line`: the hard rules admit the node for the line.
    allowed: Vec<bool>,
    /// Per line: packages that may carry some of it (admitted, stock > 0), by weight then number.
    servers: Vec<Vec<u32>>,
    /// Per package: the lines it may carry, with the node's stock of the line's SKU.
    pkg_lines: Vec<Vec<(u32, i64)>>,
    /// Every package, by weight then number.
    by_weight: Vec<u32>,
    /// Per address: its lines, and the units it needs per SKU group.
    dest_lines: Vec<Vec<usize>>,
    dest_needs: Vec<Vec<(usize, i64)>>,
}

impl Problem {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        nodes: usize,
        dests: usize,
        group_count: usize,
        lines: Vec<Line>,
        weight: Vec<i128>,
        stock: Vec<i64>,
        capacity: Vec<u32>,
        allowed: Vec<bool>,
    ) -> Self {
        let mut groups = vec![Vec::new(); group_count];
        for (l, line) in lines.iter().enumerate() {
            groups[line.group].push(l);
        }
        let lc = lines.len();
        let mut pkg_lines = vec![Vec::new(); nodes * dests];
        let mut servers = vec![Vec::new(); lc];
        for n in 0..nodes {
            for (l, line) in lines.iter().enumerate() {
                let s = stock[n * group_count + line.group];
                if allowed[n * lc + l] && s > 0 {
                    let pkg = n * dests + line.dest;
                    pkg_lines[pkg].push((l as u32, s));
                    servers[l].push(pkg as u32);
                }
            }
        }
        let key = |p: &u32| (weight[*p as usize], *p);
        for s in &mut servers {
            s.sort_by_key(key);
        }
        let mut by_weight: Vec<u32> = (0..(nodes * dests) as u32).collect();
        by_weight.sort_by_key(key);
        let mut dest_lines = vec![Vec::new(); dests];
        let mut dest_needs: Vec<Vec<(usize, i64)>> = vec![Vec::new(); dests];
        for (l, line) in lines.iter().enumerate() {
            dest_lines[line.dest].push(l);
            let needs = &mut dest_needs[line.dest];
            match needs.iter_mut().find(|(g, _)| *g == line.group) {
                Some((_, n)) => *n += line.qty,
                None => needs.push((line.group, line.qty)),
            }
        }
        Problem {
            nodes,
            dests,
            lines,
            groups,
            weight,
            stock,
            capacity,
            allowed,
            servers,
            pkg_lines,
            by_weight,
            dest_lines,
            dest_needs,
        }
    }

    fn node_of(&self, pkg: u32) -> usize {
        pkg as usize / self.dests
    }
    pub(super) fn stock_at(&self, node: usize, group: usize) -> i64 {
        self.stock[node * self.groups.len() + group]
    }

    /// Whether node `k` alone could ship every line to address `d` (ignoring other addresses).
    pub(super) fn serves_whole_address(&self, k: usize, d: usize) -> bool {
        let lc = self.lines.len();
        !self.dest_lines[d].is_empty()
            && self.dest_lines[d].iter().all(|l| self.allowed[k * lc + l])
            && self.dest_needs[d]
                .iter()
                .all(|(g, need)| self.stock_at(k, *g) >= *need)
    }

    /// Per line, the units it gets when every admitted package is open (a max flow).
    pub(super) fn max_shippable(&self) -> Vec<i64> {
        let mut out = vec![0; self.lines.len()];
        for g in 0..self.groups.len() {
            if let [l] = self.groups[g][..] {
                let all: i64 = self.servers[l]
                    .iter()
                    .map(|p| self.stock_at(self.node_of(*p), g))
                    .sum();
                out[l] = all.min(self.lines[l].qty);
                continue;
            }
            let flow = self.group_flow(g, &|_| true);
            for (pos, l) in self.groups[g].iter().enumerate() {
                out[*l] = flow.line_flow[pos];
            }
        }
        out
    }

    /// Max flow of one SKU group's lines over the packages `open` admits. Edges are tried in
    /// weight order, so units go to the cheaper packages where it makes no difference.
    fn group_flow(&self, g: usize, open: &dyn Fn(u32) -> bool) -> GroupFlow {
        let members = &self.groups[g];
        let mut right: Vec<(usize, i64, i64)> = Vec::new(); // node, stock, used
        let mut right_of: HashMap<usize, usize> = HashMap::new();
        let mut edges: Vec<Edge> = Vec::new();
        let mut left_edges: Vec<Vec<usize>> = vec![Vec::new(); members.len()];
        for (pos, &l) in members.iter().enumerate() {
            for &pkg in &self.servers[l] {
                if !open(pkg) {
                    continue;
                }
                let node = self.node_of(pkg);
                let j = *right_of.entry(node).or_insert_with(|| {
                    right.push((node, self.stock_at(node, g), 0));
                    right.len() - 1
                });
                left_edges[pos].push(edges.len());
                edges.push(Edge {
                    pos,
                    right: j,
                    pkg,
                    flow: 0,
                });
            }
        }
        let mut right_edges: Vec<Vec<usize>> = vec![Vec::new(); right.len()];
        for (e, edge) in edges.iter().enumerate() {
            right_edges[edge.right].push(e);
        }
        let demand: Vec<i64> = members.iter().map(|l| self.lines[*l].qty).collect();
        let mut line_flow = vec![0i64; members.len()];
        loop {
            // Breadth-first search for an augmenting path from a line with demand left.
            let mut seen_left = vec![false; members.len()];
            let mut seen_right = vec![false; right.len()];
            let mut parent_left: Vec<Option<usize>> = vec![None; members.len()]; // edge reached through (reverse)
            let mut parent_right: Vec<usize> = vec![usize::MAX; right.len()]; // edge reached through
            let mut queue: Vec<usize> = Vec::new();
            for pos in 0..members.len() {
                if line_flow[pos] < demand[pos] {
                    seen_left[pos] = true;
                    queue.push(pos);
                }
            }
            let mut found: Option<usize> = None;
            let mut head = 0;
            'bfs: while head < queue.len() {
                let pos = queue[head];
                head += 1;
                for &e in &left_edges[pos] {
                    let j = edges[e].right;
                    if seen_right[j] {
                        continue;
                    }
                    seen_right[j] = true;
                    parent_right[j] = e;
                    if right[j].2 < right[j].1 {
                        found = Some(j);
                        break 'bfs;
                    }
                    for &back in &right_edges[j] {
                        let p2 = edges[back].pos;
                        if edges[back].flow > 0 && !seen_left[p2] {
                            seen_left[p2] = true;
                            parent_left[p2] = Some(back);
                            queue.push(p2);
                        }
                    }
                }
            }
            let Some(end) = found else {
                let cut_lines = (0..members.len())
                    .filter(|p| seen_left[*p])
                    .map(|p| members[p])
                    .collect();
                let cut_nodes = (0..right.len())
                    .filter(|j| seen_right[*j])
                    .map(|j| right[j].0)
                    .collect();
                let used = edges
                    .into_iter()
                    .filter(|e| e.flow > 0)
                    .map(|e| (members[e.pos], e.pkg, e.flow))
                    .collect();
                return GroupFlow {
                    line_flow,
                    cut_lines,
                    cut_nodes,
                    used,
                };
            };
            // Walk back to the starting line, finding the bottleneck.
            let mut amount = right[end].1 - right[end].2;
            let mut j = end;
            let start = loop {
                let e = parent_right[j];
                let pos = edges[e].pos;
                match parent_left[pos] {
                    None => break pos,
                    Some(back) => {
                        amount = amount.min(edges[back].flow);
                        j = edges[back].right;
                    }
                }
            };
            amount = amount.min(demand[start] - line_flow[start]);
            let mut j = end;
            right[end].2 += amount;
            loop {
                let e = parent_right[j];
                edges[e].flow += amount;
                let pos = edges[e].pos;
                match parent_left[pos] {
                    None => break,
                    Some(back) => {
                        edges[back].flow -= amount;
                        j = edges[back].right;
                    }
                }
            }
            line_flow[start] += amount;
        }
    }
}

struct Edge {
    pos: usize,
    right: usize,
    pkg: u32,
    flow: i64,
}

struct GroupFlow {
    /// Units per member line (in group order).
    line_flow: Vec<i64>,
    /// The source side of the minimum cut: lines, and nodes whose stock they reach.
    cut_lines: Vec<usize>,
    cut_nodes: Vec<usize>,
    /// (line, package, units) with units > 0.
    used: Vec<(usize, u32, i64)>,
}

/// What one package carries in a plan.
pub(super) struct Shipment {
    pub pkg: usize,
    /// (line, units), by line.
    pub lines: Vec<(usize, i64)>,
}

pub(super) struct Plan {
    pub packages: Vec<Shipment>,
}

pub(super) struct Outcome {
    pub plan: Option<Plan>,
    /// The search finished: the plan is the cheapest (or no plan exists).
    pub optimal: bool,
    pub expansions: u32,
}

/// Finds the cheapest plan within the budget; see `routing`'s module docs.
pub(super) fn solve(p: &Problem, budget: SearchBudget) -> Outcome {
    let shippable = p.max_shippable();
    if p.lines.iter().zip(&shippable).any(|(l, s)| *s < l.qty) {
        return Outcome {
            plan: None,
            optimal: true,
            expansions: 0,
        };
    }
    let mut s = Search::new(p, budget.max_expansions);
    if let Some(set) = s.single_node_plan() {
        s.offer(set);
    }
    if let Some(set) = s.greedy_plan() {
        s.offer(set);
    }
    s.expand();
    let optimal = !s.exhausted;
    let plan = s.best_set.take().map(|set| p.allocate(&set));
    Outcome {
        plan,
        optimal,
        expansions: s.expansions,
    }
}

impl Problem {
    /// Splits every line over the open packages (cheapest first) and lists what each carries.
    fn allocate(&self, set: &[u32]) -> Plan {
        let mut open = vec![false; self.weight.len()];
        for pkg in set {
            open[*pkg as usize] = true;
        }
        let mut carried: HashMap<usize, Vec<(usize, i64)>> = HashMap::new();
        for g in 0..self.groups.len() {
            if let [l] = self.groups[g][..] {
                let mut left = self.lines[l].qty;
                for &pkg in self.servers[l].iter().filter(|p| open[**p as usize]) {
                    let units = left.min(self.stock_at(self.node_of(pkg), g));
                    if units > 0 {
                        carried.entry(pkg as usize).or_default().push((l, units));
                        left -= units;
                    }
                }
                continue;
            }
            let flow = self.group_flow(g, &|pkg| open[pkg as usize]);
            for (l, pkg, units) in flow.used {
                carried.entry(pkg as usize).or_default().push((l, units));
            }
        }
        let mut packages: Vec<Shipment> = carried
            .into_iter()
            .map(|(pkg, mut lines)| {
                lines.sort();
                Shipment { pkg, lines }
            })
            .collect();
        packages.sort_by_key(|s| s.pkg);
        Plan { packages }
    }
}

/// One requirement the open packages do not meet yet, and the packages that could meet it.
enum Cut {
    /// A SKU ordered on one line only: any admitted package with its stock, not yet open.
    Single(usize),
    /// Lines sharing a SKU: the packages crossing the flow's minimum cut (weight order), and
    /// the address when they all go to one.
    Shared {
        candidates: Vec<u32>,
        dest: Option<usize>,
    },
}

struct Search<'a> {
    p: &'a Problem,
    open: Vec<bool>,
    open_list: Vec<u32>,
    forbidden: Vec<u32>,
    used: Vec<u32>,
    /// Per line: stock of its SKU over the open packages that may carry it.
    supply: Vec<i64>,
    cur: i128,
    best: i128,
    best_set: Option<Vec<u32>>,
    expansions: u32,
    budget: u32,
    exhausted: bool,
}

impl<'a> Search<'a> {
    fn new(p: &'a Problem, budget: u32) -> Self {
        Search {
            p,
            open: vec![false; p.weight.len()],
            open_list: Vec::new(),
            forbidden: vec![0; p.weight.len()],
            used: vec![0; p.nodes],
            supply: vec![0; p.lines.len()],
            cur: 0,
            best: i128::MAX,
            best_set: None,
            expansions: 0,
            budget,
            exhausted: false,
        }
    }

    fn usable(&self, pkg: u32) -> bool {
        let n = self.p.node_of(pkg);
        !self.open[pkg as usize]
            && self.forbidden[pkg as usize] == 0
            && self.used[n] < self.p.capacity[n]
    }

    fn open_pkg(&mut self, pkg: u32) {
        self.open[pkg as usize] = true;
        self.open_list.push(pkg);
        self.used[self.p.node_of(pkg)] += 1;
        self.cur += self.p.weight[pkg as usize];
        for &(l, s) in &self.p.pkg_lines[pkg as usize] {
            self.supply[l as usize] += s;
        }
    }

    fn close_pkg(&mut self, pkg: u32) {
        self.open[pkg as usize] = false;
        let at = self
            .open_list
            .iter()
            .rposition(|p| *p == pkg)
            .expect("closing an open package");
        self.open_list.remove(at);
        self.used[self.p.node_of(pkg)] -= 1;
        self.cur -= self.p.weight[pkg as usize];
        for &(l, s) in &self.p.pkg_lines[pkg as usize] {
            self.supply[l as usize] -= s;
        }
    }

    fn reset(&mut self) {
        while let Some(pkg) = self.open_list.last().copied() {
            self.close_pkg(pkg);
        }
    }

    fn offer(&mut self, set: Vec<u32>) {
        let w: i128 = set.iter().map(|p| self.p.weight[*p as usize]).sum();
        if w < self.best {
            self.best = w;
            self.best_set = Some(set);
        }
    }

    /// The requirements the open packages leave unmet (empty: the open set is a plan).
    fn cuts(&self) -> Vec<Cut> {
        let mut cuts = Vec::new();
        for (g, members) in self.p.groups.iter().enumerate() {
            if let [l] = members[..] {
                if self.supply[l] < self.p.lines[l].qty {
                    cuts.push(Cut::Single(l));
                }
                continue;
            }
            let flow = self.p.group_flow(g, &|pkg| self.open[pkg as usize]);
            if flow.cut_lines.is_empty() {
                continue;
            }
            let mut candidates: Vec<u32> = Vec::new();
            for &l in &flow.cut_lines {
                for &pkg in &self.p.servers[l] {
                    if !self.open[pkg as usize] && !flow.cut_nodes.contains(&self.p.node_of(pkg)) {
                        candidates.push(pkg);
                    }
                }
            }
            candidates.sort_by_key(|p| (self.p.weight[*p as usize], *p));
            candidates.dedup();
            let d0 = self.p.lines[flow.cut_lines[0]].dest;
            let dest = flow
                .cut_lines
                .iter()
                .all(|l| self.p.lines[*l].dest == d0)
                .then_some(d0);
            cuts.push(Cut::Shared { candidates, dest });
        }
        cuts
    }

    fn candidates<'c>(&self, cut: &'c Cut) -> &'c [u32]
    where
        'a: 'c,
    {
        match cut {
            Cut::Single(l) => &self.p.servers[*l],
            Cut::Shared { candidates, .. } => candidates,
        }
    }

    fn cut_dest(&self, cut: &Cut) -> Option<usize> {
        match cut {
            Cut::Single(l) => Some(self.p.lines[*l].dest),
            Cut::Shared { dest, .. } => *dest,
        }
    }

    /// One branch-and-bound node: record a plan, or bound, pick the tightest unmet requirement
    /// and try each package that could meet it, cheapest first, forbidding each after its turn.
    fn expand(&mut self) {
        if self.expansions >= self.budget {
            self.exhausted = true;
            return;
        }
        self.expansions += 1;
        let cuts = self.cuts();
        if cuts.is_empty() {
            if self.cur < self.best {
                self.best = self.cur;
                self.best_set = Some(self.open_list.clone());
            }
            return;
        }
        let room = self.best.saturating_sub(self.cur);
        let mut lb_dest: Vec<i128> = vec![0; self.p.dests];
        let mut lb_any: i128 = 0;
        let mut choice: Option<(usize, i128, usize)> = None; // (count under bound, cheapest, cut)
        for (ci, cut) in cuts.iter().enumerate() {
            let limit = choice.map_or(usize::MAX, |c| c.0);
            let mut cheapest: Option<i128> = None;
            let mut count = 0usize;
            for &pkg in self.candidates(cut) {
                if !self.usable(pkg) {
                    continue;
                }
                let w = self.p.weight[pkg as usize];
                cheapest.get_or_insert(w);
                if w >= room || count > limit {
                    break;
                }
                count += 1;
            }
            let Some(cheapest) = cheapest else { return };
            if cheapest >= room {
                return;
            }
            lb_any = lb_any.max(cheapest);
            if let Some(d) = self.cut_dest(cut) {
                lb_dest[d] = lb_dest[d].max(cheapest);
            }
            let better = match choice {
                None => true,
                Some((c, w, _)) => count < c || (count == c && cheapest > w),
            };
            if better {
                choice = Some((count, cheapest, ci));
            }
        }
        let lb = lb_any.max(lb_dest.iter().sum());
        if lb >= room {
            return;
        }
        let cut = &cuts[choice.expect("at least one cut").2];
        let mut tried: Vec<u32> = Vec::new();
        for &pkg in self.candidates(cut) {
            if !self.usable(pkg) {
                continue;
            }
            if self.cur + self.p.weight[pkg as usize] >= self.best {
                break;
            }
            self.open_pkg(pkg);
            self.expand();
            self.close_pkg(pkg);
            if self.exhausted {
                break;
            }
            self.forbidden[pkg as usize] += 1;
            tried.push(pkg);
        }
        for pkg in tried {
            self.forbidden[pkg as usize] -= 1;
        }
    }

    /// Each address from the cheapest node that alone holds all its lines, if that is a plan.
    fn single_node_plan(&mut self) -> Option<Vec<u32>> {
        let p = self.p;
        for d in 0..p.dests {
            if !p.lines.iter().any(|l| l.dest == d) {
                continue;
            }
            let pick = p.by_weight.iter().copied().find(|pkg| {
                *pkg as usize % p.dests == d
                    && self.usable(*pkg)
                    && p.serves_whole_address(p.node_of(*pkg), d)
            });
            match pick {
                Some(pkg) => self.open_pkg(pkg),
                None => {
                    self.reset();
                    return None;
                }
            }
        }
        let plan = self.cuts().is_empty().then(|| self.open_list.clone());
        self.reset();
        plan
    }

    /// Greedy: repeatedly open the package with the least weight per share of unmet demand it
    /// covers, then close packages the plan does not need, most expensive first.
    fn greedy_plan(&mut self) -> Option<Vec<u32>> {
        let p = self.p;
        let mut missing = vec![0i64; p.lines.len()];
        loop {
            let cuts = self.cuts();
            if cuts.is_empty() {
                break;
            }
            for (g, members) in p.groups.iter().enumerate() {
                if let [l] = members[..] {
                    missing[l] = (p.lines[l].qty - self.supply[l]).max(0);
                } else {
                    let flow = p.group_flow(g, &|pkg| self.open[pkg as usize]);
                    for (pos, l) in members.iter().enumerate() {
                        missing[*l] = p.lines[*l].qty - flow.line_flow[pos];
                    }
                }
            }
            let mut pick: Option<(f64, i128, u32)> = None;
            for &pkg in &p.by_weight {
                if !self.usable(pkg) {
                    continue;
                }
                let gain: f64 = p.pkg_lines[pkg as usize]
                    .iter()
                    .filter(|(l, _)| missing[*l as usize] > 0)
                    .map(|(l, s)| {
                        (*s).min(missing[*l as usize]) as f64 / missing[*l as usize] as f64
                    })
                    .sum();
                if gain <= 0.0 {
                    continue;
                }
                let w = p.weight[pkg as usize];
                let score = w as f64 / gain;
                if pick.is_none_or(|(bs, _, _)| score < bs) {
                    pick = Some((score, w, pkg));
                }
            }
            match pick {
                Some((_, _, pkg)) => self.open_pkg(pkg),
                None => {
                    self.reset();
                    return None;
                }
            }
        }
        let mut by_cost = self.open_list.clone();
        by_cost.sort_by_key(|pkg| std::cmp::Reverse((p.weight[*pkg as usize], *pkg)));
        for pkg in by_cost {
            self.close_pkg(pkg);
            if !self.cuts().is_empty() {
                self.open_pkg(pkg);
            }
        }
        let plan = self.open_list.clone();
        self.reset();
        Some(plan)
    }
}
