//! Shrinking a failing [`Case`] to a smaller one that still fails, for
//! reproducers a person can read (`kpconform fuzz`).
//!
//! Every step removes one thing the apiserver lets one remove on its own —
//! a probe, an object, an endpoint, a service port, an unused node — or
//! resets a kube-proxy setting to its default, so a shrunk case is as valid
//! as the one it came from.

use super::Case;
use kpconform_suite::scenario::Object;

impl Case {
    /// The cases one step smaller than this one, simplest cuts first.
    pub fn smaller(&self) -> Vec<Case> {
        let mut out = Vec::new();
        if self.probes.len() > 1 {
            for i in 0..self.probes.len() {
                let mut c = self.clone();
                c.probes = vec![self.probes[i].clone()];
                out.push(c);
            }
        }
        for i in 0..self.cluster.objects.len() {
            let mut c = self.clone();
            c.cluster.objects.remove(i);
            out.push(c);
        }
        self.smaller_objects(&mut out);
        self.smaller_settings(&mut out);
        for (i, node) in self.cluster.nodes.iter().enumerate() {
            if self.cluster.nodes.len() == 1 || self.probes.iter().any(|p| p.node == node.name) {
                continue;
            }
            let mut c = self.clone();
            c.cluster.nodes.remove(i);
            c.cluster.objects.retain(
                |o| !matches!(o, Object::Node(n) if n.metadata.name.as_deref() == Some(&node.name)),
            );
            out.push(c);
        }
        out
    }

    /// One endpoint or one port less, object by object.
    fn smaller_objects(&self, out: &mut Vec<Case>) {
        for (i, object) in self.cluster.objects.iter().enumerate() {
            match object {
                Object::EndpointSlice(slice) => {
                    for e in 0..slice.endpoints.len() {
                        let mut s = slice.clone();
                        s.endpoints.remove(e);
                        out.push(self.with_object(i, Object::EndpointSlice(s)));
                    }
                }
                Object::Service(svc) => {
                    let ports = svc
                        .spec
                        .as_ref()
                        .and_then(|s| s.ports.as_ref())
                        .map_or(0, Vec::len);
                    for p in 0..ports {
                        let mut s = svc.clone();
                        if let Some(list) = s.spec.as_mut().and_then(|s| s.ports.as_mut()) {
                            list.remove(p);
                        }
                        if ports > 1 {
                            out.push(self.with_object(i, Object::Service(s)));
                        }
                    }
                }
                Object::Node(_) => {}
            }
        }
    }

    /// kube-proxy's defaults, one setting at a time.
    fn smaller_settings(&self, out: &mut Vec<Case>) {
        let c = &self.cluster;
        if c.masquerade_all {
            let mut s = self.clone();
            s.cluster.masquerade_all = false;
            out.push(s);
        }
        if c.masquerade_bit != 14 {
            let mut s = self.clone();
            s.cluster.masquerade_bit = 14;
            out.push(s);
        }
        if !c.node_port_addresses.is_empty() {
            let mut s = self.clone();
            s.cluster.node_port_addresses.clear();
            out.push(s);
        }
    }

    fn with_object(&self, i: usize, object: Object) -> Case {
        let mut c = self.clone();
        c.cluster.objects[i] = object;
        c
    }

    /// Greedily takes smaller cases while `fails` holds for them, at most
    /// `max_steps` times; returns the smallest failing case found.
    pub fn shrink(&self, max_steps: usize, mut fails: impl FnMut(&Case) -> bool) -> Case {
        let mut current = self.clone();
        for _ in 0..max_steps {
            match current.smaller().into_iter().find(|c| fails(c)) {
                Some(next) => current = next,
                None => break,
            }
        }
        current
    }
}
