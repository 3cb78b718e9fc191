use mobility::prelude::*;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Nested user data: `#[mobile]` without an impl is plain migratable data.
#[mobile]
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Point {
    x: i64,
    y: i64,
}

/// An enum inside the state.
#[mobile]
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    Circle { center: Point, radius: f64 },
    Polygon(Vec<Point>),
    Empty,
}

/// An error type that travels in replies.
#[mobile]
#[derive(Debug)]
pub enum DrawError {
    TooLarge { limit: usize },
}

#[derive(Debug)]
pub struct ReopenError;

impl std::fmt::Display for ReopenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("cannot reopen the log")
    }
}

/// The actor.
#[mobile]
#[derive(Default)]
pub struct Canvas {
    shapes: Vec<Shape>,
    names: HashMap<String, usize>,
    selected: Option<usize>,
    origin: Box<Point>,
    palette: Arc<Vec<String>>,
    title: String,
    refresh: Duration,
    thumbnail: Vec<u8>,
    #[mobile(skip)]
    log: Option<std::fs::File>,
    #[mobile(skip)]
    scratch: Vec<u8>,
}

#[mobile(tag = "example.canvas")]
impl Canvas {
    /// Adds a shape and returns how many there are.
    pub fn add(&mut self, name: String, shape: Shape) -> usize {
        self.names.insert(name, self.shapes.len());
        self.shapes.push(shape);
        self.shapes.len()
    }

    /// Looks a shape up by name.
    pub fn find(&self, name: String) -> Option<Shape> {
        self.names.get(&name).map(|&i| self.shapes[i].clone())
    }

    pub fn select(&mut self, index: usize) -> Result<(), DrawError> {
        if index >= self.shapes.len() {
            return Err(DrawError::TooLarge {
                limit: self.shapes.len(),
            });
        }
        self.selected = Some(index);
        Ok(())
    }

    pub async fn redraw(&mut self, ctx: &mut Context<Self>) -> u64 {
        let _ = ctx.send_after(self.refresh).redraw();
        self.scratch.clear();
        self.shapes.len() as u64
    }

    pub async fn set_thumbnail(&mut self, bytes: Vec<u8>, title: String) {
        self.thumbnail = bytes;
        self.title = title;
    }

    pub fn palette(&self) -> Arc<Vec<String>> {
        self.palette.clone()
    }

    pub fn origin(&self) -> Box<Point> {
        self.origin.clone()
    }

    pub fn ping(&self) {}

    /// Not a handler: skipped.
    #[mobile(skip)]
    pub fn borrow_title(&self) -> &str {
        &self.title
    }

    /// Not a handler: private.
    fn helper(&self) -> usize {
        self.shapes.len()
    }

    /// Not a handler: no receiver.
    pub fn new_empty() -> Self {
        Self::default()
    }

    #[mobile(on_start)]
    fn started(&mut self) {
        let _ = self.helper();
    }

    #[mobile(on_depart)]
    async fn leaving(&mut self, ctx: &mut Context<Self>) {
        let _ = ctx;
        self.log = None;
    }

    #[mobile(on_arrive)]
    fn arrived(&mut self) -> Result<(), ReopenError> {
        if self.title == "broken" {
            return Err(ReopenError);
        }
        Ok(())
    }

    #[mobile(on_stop)]
    async fn stopped(&mut self) {}
}

#[allow(dead_code)]
async fn client(canvas: Handle<Canvas>) -> Result<(), Error> {
    let n: usize = canvas.add("a".to_owned(), Shape::Empty).await?;
    let found: Option<Shape> = canvas.find("a".to_owned()).await?;
    let selected: Result<(), DrawError> = canvas.select(n).await?;
    let frames: u64 = canvas.redraw().await?;
    canvas.set_thumbnail(vec![1, 2, 3], "t".to_owned()).await?;
    let _: Arc<Vec<String>> = canvas.palette().await?;
    let _: Box<Point> = canvas.origin().await?;
    canvas.ping().await?;
    canvas
        .tell()
        .add("b".to_owned(), Shape::Polygon(vec![Point::default()]))?;
    canvas.tell().ping()?;
    let _ = (found, selected, frames);
    Ok(())
}

fn main() {
    let canvas = Canvas::new_empty();
    let _ = canvas.borrow_title();
    assert_eq!(<Canvas as Actor>::TYPE_TAG, "example.canvas");
    assert_ne!(<Canvas as Actor>::SCHEMA, <Canvas as Mobile>::FINGERPRINT);
    let msg = CanvasMsg::Add {
        name: "x".to_owned(),
        shape: Shape::Empty,
    };
    assert_eq!(format!("{msg:?}"), "Add");
}
