//! Frames between nodes: sending (direct, dialed or relayed), receiving
//! and dispatching them, replies, deliveries and route corrections.

use super::*;

/// Snapshots from this size on are decoded off the link's task.
const LARGE_SNAPSHOT: usize = 256 * 1024;

impl Node {
    pub(crate) fn has_peer(&self, node: &NodeId) -> bool {
        self.shared.links.has_direct(node)
    }

    /// Sends a frame to a node: over the direct link, or else relayed by
    /// the linked node that traffic from it came through.
    pub(crate) fn send_peer(&self, to: &NodeId, msg: &PeerMsg) -> Result<(), Error> {
        self.send_frame(to, crate::proto::wire::frame_of(msg)?)
    }

    /// Sends a whole frame (header and tail) to a node.
    pub(crate) fn send_frame(&self, to: &NodeId, frame: Vec<u8>) -> Result<(), Error> {
        match self.fault_outgoing(to, frame) {
            Some(frame) => self.route_frame(to, frame, self.id(), crate::proto::wire::RELAY_HOPS),
            None => Ok(()),
        }
    }

    pub(super) fn route_frame(
        &self,
        to: &NodeId,
        frame: Vec<u8>,
        from: &NodeId,
        hops: u8,
    ) -> Result<(), Error> {
        self.shared.meters.sent(frame.len());
        let unknown = || Error::UnknownNode {
            node: to.clone(),
            from: self.id().clone(),
        };
        let relayed = |hops: u8| -> Result<Vec<u8>, Error> {
            let mut outer = crate::proto::wire::frame_of(&PeerMsg::Relay {
                from: from.clone(),
                to: to.clone(),
                hops,
            })?;
            outer.extend_from_slice(&frame);
            Ok(outer)
        };
        // A member declared failed is out for good (its restart is a new
        // incarnation): it may be back from a stall with its links resumed,
        // but it is fenced and must be sent nothing.
        if self.is_failed_member(to) {
            return Err(unknown());
        }
        let path = self.shared.links.path(to);
        if let Path::Direct(link) = &path {
            let frame = if from == self.id() {
                frame
            } else {
                relayed(hops)?
            };
            return link.send(Bytes::from(frame)).map_err(|_| unknown());
        }
        // A member of this cluster is dialed on first use rather than
        // reached through a relay, which may leave the cluster.
        if let Some(addr) = self.member_address(to) {
            let frame = if from == self.id() {
                frame
            } else {
                relayed(hops)?
            };
            if let Queued::DialNeeded = self.shared.links.queue(to, Bytes::from(frame)) {
                self.dial(to.clone(), addr);
            }
            return Ok(());
        }
        match path {
            Path::Relay(link) if hops > 0 => link
                .send(Bytes::from(relayed(hops - 1)?))
                .map_err(|_| unknown()),
            _ => Err(unknown()),
        }
    }

    /// Dials `to` at `addr`; the frames queued for it go once the link is
    /// up, or are answered as undeliverable if it cannot be reached.
    pub(super) fn dial(&self, to: NodeId, addr: String) {
        let node = self.clone();
        self.spawn_task(async move {
            let why = match node.connect(&addr).await {
                Ok(peer) if peer == to => return,
                Ok(other) => format!("{addr} is node {other}, not {to}"),
                Err(e) => e.to_string(),
            };
            tracing::warn!(node = %node.id(), peer = %to, reason = %why, "dial failed");
            for frame in node.shared.links.dial_failed(&to) {
                node.bounce(&to, &frame);
            }
        });
    }

    /// Answers a frame that could not reach `to` as undeliverable.
    pub(super) fn bounce(&self, to: &NodeId, frame: &Bytes) {
        match crate::proto::wire::open_frame(frame) {
            Ok((
                PeerMsg::Deliver {
                    actor, envelope, ..
                },
                _,
            )) => self.reject(&envelope, actor, self.down_reason(to)),
            Ok((PeerMsg::Prepare { actor, epoch, .. }, _)) => self.control(
                &actor,
                NetControl::Handover {
                    from: to.clone(),
                    frame: Frame::PrepareAck {
                        epoch,
                        result: Err(MigrationFailure::Unreachable(format!(
                            "destination {to} could not be reached"
                        ))),
                    },
                },
            ),
            Ok((msg, _)) => {
                tracing::warn!(node = %self.id(), peer = %to, ?msg, "undeliverable frame dropped")
            }
            Err(e) => tracing::warn!(node = %self.id(), error = %e, "undeliverable frame dropped"),
        }
    }

    /// Tells the source of an arriving actor that it is refused.
    fn refuse_arrival(
        &self,
        from: &NodeId,
        actor: ActorId,
        type_tag: &str,
        epoch: u64,
        failure: MigrationFailure,
    ) {
        tracing::info!(node = %self.id(), %actor, %failure, "refused an arriving actor");
        self.emit(crate::proto::observe::NodeEvent::ArrivalRefused {
            actor,
            type_tag: type_tag.to_owned(),
            from: from.clone(),
            failure: failure.clone(),
        });
        let ack = PeerMsg::PrepareAck {
            actor,
            epoch,
            result: Err(failure),
        };
        if let Err(e) = self.send_peer(from, &ack) {
            tracing::warn!(node = %self.id(), error = %e, "refusal could not be sent");
        }
    }

    /// Handles one frame from linked node `from`.
    pub(crate) fn on_frame(&self, from: &NodeId, frame: &Bytes) {
        self.shared.meters.received(frame.len());
        for _ in 0..self.fault_incoming(from, frame) {
            self.handle_frame(from, frame);
        }
    }

    pub(super) fn handle_frame(&self, from: &NodeId, frame: &Bytes) {
        // A member declared failed is fenced: nothing it sends counts any
        // more (it was stalled or cut off, and learns it soon), so an actor
        // it prepared, a commit, a message from it, are all ignored.
        if self.is_failed_member(from) {
            tracing::debug!(node = %self.id(), peer = %from, "a frame from a member declared failed ignored");
            return;
        }
        match crate::proto::wire::open_frame(frame) {
            Ok((msg, tail)) => self.on_peer_msg(from, msg, &tail),
            Err(e) => {
                tracing::warn!(node = %self.id(), peer = %from, error = %e, "dropped an undecodable frame")
            }
        }
    }

    /// Remembers that `origin` can be reached through linked node `via`.
    pub(super) fn learn_route(&self, origin: &NodeId, via: &NodeId) {
        if origin != self.id() {
            self.shared.links.learn_relay(origin, via);
        }
    }

    /// Routes a reply to request `request` of node `origin`.
    pub(crate) fn send_reply(&self, origin: &NodeId, request: u64, result: Result<Vec<u8>, Error>) {
        if origin == self.id() {
            if let Some(waiter) = self.take_pending(request) {
                let _ = waiter.send(result.map(ReplyValue::Encoded));
            }
            return;
        }
        let msg = PeerMsg::Reply {
            request,
            result: result.map(serde_bytes::ByteBuf::from),
        };
        if let Err(e) = self.send_peer(origin, &msg) {
            tracing::warn!(node = %self.id(), %origin, error = %e, "a reply could not be sent");
        }
    }

    /// Reports the end of `actor` to monitor `monitor` of node `to`.
    pub(crate) fn send_down(&self, to: &NodeId, monitor: u64, actor: ActorId, reason: ExitReason) {
        if to == self.id() {
            if let Some(waiter) = self.take_monitor(monitor) {
                let _ = waiter.send(reason);
            }
            return;
        }
        if let Err(e) = self.send_peer(
            to,
            &PeerMsg::Down {
                monitor,
                actor,
                reason,
            },
        ) {
            tracing::warn!(node = %self.id(), %to, error = %e, "a monitor report could not be sent");
        }
    }

    /// Answers a message that cannot reach its actor.
    /// Sends a numbered message on to `actor` at `route` (for a forwarding
    /// cell and for direct senders alike). If that route is dead, it goes
    /// to where the directory places the actor, and that route is returned
    /// for the caller to follow; if it can go nowhere, its sender is told
    /// the route's node is down.
    pub(crate) fn deliver_to(
        &self,
        actor: ActorId,
        type_tag: String,
        route: &Route,
        envelope: WireEnvelope,
    ) -> Option<Route> {
        let deliver = PeerMsg::Deliver {
            actor,
            type_tag,
            envelope,
        };
        let Err(error) = self.send_peer(&route.node, &deliver) else {
            return None;
        };
        if let Some((node, epoch)) = self.locate(actor) {
            if node != route.node && node != *self.id() && self.send_peer(&node, &deliver).is_ok() {
                return Some(Route { node, epoch });
            }
        }
        tracing::warn!(%actor, to = %route.node, %error, "message could not be delivered");
        if let PeerMsg::Deliver { envelope, .. } = &deliver {
            self.reject(envelope, actor, self.down_reason(&route.node));
        }
        None
    }

    pub(crate) fn reject(&self, envelope: &WireEnvelope, actor: ActorId, reason: ExitReason) {
        if let WireBody::Monitor(monitor) = envelope.body {
            self.send_down(&envelope.origin.node, monitor, actor, reason.clone());
        }
        if let Some(request) = envelope.reply {
            self.send_reply(
                &envelope.origin.node,
                request,
                Err(Error::ActorDown { actor, reason }),
            );
        }
    }

    pub(super) fn entry(&self, id: &ActorId) -> Option<Arc<dyn ErasedEntry>> {
        read(&self.shared.entries).get(id).cloned()
    }

    /// A frame of the migration protocol for `actor`'s cell.
    pub(super) fn handover(&self, from: &NodeId, actor: ActorId, frame: HandoverFrame) {
        let from = from.clone();
        self.control(&actor, NetControl::Handover { from, frame });
    }

    pub(super) fn control(&self, actor: &ActorId, control: NetControl) {
        match self.entry(actor) {
            Some(entry) => entry.control(control),
            None => {
                tracing::debug!(node = %self.id(), %actor, ?control, "control for an unknown actor dropped")
            }
        }
    }

    /// A message for an actor this node has no slot for (its forwarder
    /// retired, say): sent on to where the directory says it lives, and
    /// its sender told so.
    pub(super) fn forward_unknown(&self, actor: ActorId, type_tag: String, envelope: WireEnvelope) {
        let located = self.locate(actor).filter(|(node, _)| node != self.id());
        let Some((node, epoch)) = located else {
            // A node shut down has forgotten its actors: they went down
            // with it, which is what the sender is told.
            let reason = if self.shared.stopped.load(Ordering::Acquire) {
                ExitReason::NodeDown(self.id().clone())
            } else {
                ExitReason::NoSuchActor
            };
            return self.reject(&envelope, actor, reason);
        };
        let route = Route { node, epoch };
        let mut envelope = envelope;
        if self.pass_through(actor, &route, &mut envelope) {
            self.deliver_to(actor, type_tag, &route, envelope);
        }
    }

    /// A message of another node's stream passing through this one on its
    /// way to `route`: counted, its hops bumped (refused and answered past
    /// `MAX_FORWARDS`: it is caught between stale routes), and its origin
    /// told where the actor is. `false`: refused. Messages of this node's
    /// own streams pass untouched.
    pub(crate) fn pass_through(
        &self,
        actor: ActorId,
        route: &Route,
        envelope: &mut WireEnvelope,
    ) -> bool {
        let origin = &envelope.origin.node;
        if origin == self.id() {
            return true;
        }
        self.count_forwarded();
        envelope.hops = envelope.hops.saturating_add(1);
        if envelope.hops > crate::proto::wire::MAX_FORWARDS {
            tracing::warn!(node = %self.id(), %actor, %origin, "a message passed too many forwarders; refused");
            self.reject(envelope, actor, ExitReason::NoSuchActor);
            return false;
        }
        if *origin != route.node {
            let moved = PeerMsg::Moved {
                actor,
                node: route.node.clone(),
                epoch: route.epoch,
                addr: self.address_of(&route.node),
            };
            let _ = self.send_peer(origin, &moved);
        }
        true
    }

    /// A correction: go straight to `node` from now on, dialing it first if
    /// this node has no link to it yet (until then, the old route works).
    pub(super) fn on_moved(&self, actor: ActorId, node: NodeId, epoch: u64, addr: Option<String>) {
        if self.has_peer(&node) || node == *self.id() {
            self.control(&actor, NetControl::Moved { node, epoch });
            return;
        }
        let Some(addr) = addr else { return };
        let this = self.clone();
        self.spawn_task(async move {
            match this.connect(&addr).await {
                Ok(peer) if peer == node => this.control(&actor, NetControl::Moved { node, epoch }),
                Ok(other) => {
                    tracing::warn!(%addr, expected = %node, found = %other, "address names another node")
                }
                Err(e) => {
                    tracing::debug!(%addr, error = %e, "cannot reach the new location; keeping the old route")
                }
            }
        });
    }

    /// Handles one frame from linked node `from`.
    pub(super) fn on_peer_msg(&self, from: &NodeId, msg: PeerMsg, tail: &Bytes) {
        match msg {
            PeerMsg::Relay {
                from: origin,
                to,
                hops,
            } => {
                self.learn_route(&origin, from);
                if to == *self.id() {
                    self.on_frame(&origin, tail);
                } else if let Err(e) = self.route_frame(&to, tail.to_vec(), &origin, hops) {
                    tracing::warn!(node = %self.id(), %to, error = %e, "a relayed frame could not be carried on");
                    // A message's sender is told, not left waiting.
                    if let Ok((
                        PeerMsg::Deliver {
                            actor, envelope, ..
                        },
                        _,
                    )) = crate::proto::wire::open_frame(tail)
                    {
                        self.reject(&envelope, actor, self.down_reason(&to));
                    }
                }
            }
            PeerMsg::Deliver {
                actor,
                type_tag,
                envelope,
            } => match self.entry(&actor) {
                Some(entry) => {
                    self.learn_route(&envelope.origin.node, from);
                    if let Err(envelope) = entry.deliver(envelope) {
                        let reason = entry.exit_reason().unwrap_or(ExitReason::NoSuchActor);
                        self.reject(&envelope, actor, reason);
                    }
                }
                None => self.forward_unknown(actor, type_tag, envelope),
            },
            PeerMsg::Reply { request, result } => {
                if let Some(waiter) = self.take_pending(request) {
                    let _ = waiter.send(result.map(|bytes| ReplyValue::Encoded(bytes.into_vec())));
                }
            }
            PeerMsg::Down {
                monitor, reason, ..
            } => {
                if let Some(waiter) = self.take_monitor(monitor) {
                    let _ = waiter.send(reason);
                }
            }
            PeerMsg::Moved {
                actor,
                node,
                epoch,
                addr,
            } => self.on_moved(actor, node, epoch, addr),
            PeerMsg::Prepare {
                actor,
                type_tag,
                schema,
                epoch,
                version,
                state_schema,
            } => {
                let tag = type_tag.clone();
                let accepted = if self.shared.leaving.load(Ordering::Acquire) {
                    Err(MigrationFailure::Leaving)
                } else {
                    self.registry()
                        .accept(&type_tag, version, schema, state_schema)
                };
                let result = match accepted {
                    Err(failure) => Err(failure),
                    // A large snapshot is decoded on a blocking thread, so
                    // one big arrival does not hold up every other frame of
                    // its link. (Frames for that actor overtaking it change
                    // nothing: an abort that comes first closes the attempt,
                    // and its prepare is then refused.)
                    Ok(ty) if tail.len() >= LARGE_SNAPSHOT => {
                        let (node, from, tail) = (self.clone(), from.clone(), tail.clone());
                        self.runtime().spawn_blocking(move || {
                            let args = PrepareArgs {
                                from: from.clone(),
                                actor,
                                epoch,
                                snapshot: &tail,
                            };
                            if let Err(failure) = ty.prepare(&node, args) {
                                node.refuse_arrival(&from, actor, &tag, epoch, failure);
                            }
                        });
                        return;
                    }
                    Ok(ty) => ty.prepare(
                        self,
                        PrepareArgs {
                            from: from.clone(),
                            actor,
                            epoch,
                            snapshot: tail,
                        },
                    ),
                };
                // On success the cell answers once the actor is restored.
                if let Err(failure) = result {
                    self.refuse_arrival(from, actor, &tag, epoch, failure);
                }
            }
            PeerMsg::PrepareAck {
                actor,
                epoch,
                result,
            } => self.handover(from, actor, Frame::PrepareAck { epoch, result }),
            PeerMsg::Commit { actor, epoch } => self.handover(from, actor, Frame::Commit { epoch }),
            PeerMsg::Committed {
                actor,
                epoch,
                queued,
            } => self.control(
                &actor,
                NetControl::Committed {
                    from: from.clone(),
                    epoch,
                    queued,
                },
            ),
            PeerMsg::FirstHandled { actor, epoch } => {
                self.control(&actor, NetControl::FirstHandled { epoch })
            }
            // A node that knows nothing of the actor (a restart, say) leaves
            // it unanswered: it did not begin that attempt, and the
            // destination waits until the one that did is declared failed.
            PeerMsg::Resolve { actor, epoch } => {
                self.handover(from, actor, Frame::Resolve { epoch })
            }
            PeerMsg::Abort { actor, epoch } => match self.entry(&actor) {
                Some(_) => self.handover(from, actor, Frame::Abort { epoch }),
                // Its prepare never got here (or its slot is gone): there is
                // no copy, and a late prepare of that attempt is refused.
                None => {
                    self.close_epoch(actor, epoch);
                    let _ = self.send_peer(from, &PeerMsg::Aborted { actor, epoch });
                }
            },
            PeerMsg::Aborted { actor, epoch } => {
                self.handover(from, actor, Frame::Aborted { epoch })
            }
            PeerMsg::ClaimName {
                name,
                actor,
                request,
            } => {
                let Some(directory) = &self.shared.directory else {
                    tracing::warn!(node = %self.id(), peer = %from, "a name claim reached a node outside any cluster");
                    return;
                };
                let owner = directory
                    .decide_claim(&name, actor, from, self.local_holder(&name))
                    .err();
                let answer = PeerMsg::NameClaimed { request, owner };
                if let Err(e) = self.send_peer(from, &answer) {
                    tracing::warn!(node = %self.id(), peer = %from, error = %e, "a claim's answer could not be sent");
                }
            }
            PeerMsg::NameClaimed { request, owner } => {
                if let Some(waiter) = lock(&self.shared.name_claims).remove(&request) {
                    let _ = waiter.send(owner);
                }
            }
        }
    }
}
