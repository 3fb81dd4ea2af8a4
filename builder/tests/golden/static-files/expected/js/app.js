console.log("served as it is");
